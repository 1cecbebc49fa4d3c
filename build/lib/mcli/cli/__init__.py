"""The `mcli` command line, built only on the public SDK."""
