"""Catalog: what each dataset holds (schema, personal-information tags) and how it is graded."""
