"""Edges that write: PostgreSQL (migrations, upserts), Redis status cache, metrics, logs."""
