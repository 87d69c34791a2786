"""QR codes of payment links, as PNG data URIs (``data:image/png;base64,...``)."""

from __future__ import annotations

import segno


def qr_data_uri(link: str, scale: int = 4) -> str:
    """A PNG QR code of ``link`` (error correction M) as a data URI a browser can show."""
    return segno.make(link, error="m").png_data_uri(scale=scale)
