"""In-domain model serving (模型不出域): a registry of trained models with model cards, and
long-lived sandboxed prediction workers.  Model files never leave; callers get predictions
only, under per-caller rate limits and daily quotas, and every call is audited."""
