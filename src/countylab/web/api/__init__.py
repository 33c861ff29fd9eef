"""JSON API under /api (documented at /api/docs)."""
