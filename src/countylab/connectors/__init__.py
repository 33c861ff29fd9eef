"""Pull connectors: scheduled incremental syncs from department databases into catalog datasets."""
