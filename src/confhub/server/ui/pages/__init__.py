"""One module per group of pages; each lists its ``PAGES``: (path, handler, methods)."""
