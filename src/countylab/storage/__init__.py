"""Adapters for persistence: the metadata database and the Parquet warehouse."""
