"""``python -m stack up|down|status|clean``."""

from __future__ import annotations

import sys

from stack.cli import main_stack

raise SystemExit(main_stack(sys.argv[1:]))
