"""The web entry point: JSON API (web/api) and Chinese-first pages (web/ui)."""
