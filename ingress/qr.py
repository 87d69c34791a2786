"""QR codes of payment links, as PNG data URIs (``data:image/png;base64,...``)."""

from __future__ import annotations

import segno

FIXED_MASK = 0
"""QR mask pattern used for every code.

Choosing the mask by penalty scoring (the encoder's default) costs ~11 ms per code,
80% of the create request; every mask is valid and decodes in every reader, so we
fix one. Measured with segno 1.6: 14 ms -> 2.5 ms to build, ~3 ms to write the PNG.
"""


def qr_data_uri(link: str, scale: int = 4) -> str:
    """A PNG QR code of ``link`` (error correction M) as a data URI a browser can show."""
    return segno.make(link, error="m", mask=FIXED_MASK).png_data_uri(scale=scale)
