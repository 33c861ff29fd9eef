"""Server-rendered pages (Jinja2), Chinese by default."""
