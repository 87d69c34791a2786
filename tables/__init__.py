"""Faust table declarations: velocity windows, the device graph, recent dedupe.

Tables hold derived, rebuildable state (from their changelog topics); PostgreSQL
stays the source of truth. The walking skeleton has none yet: the fraud engine
adds the velocity windows here.
"""
