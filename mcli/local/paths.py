"""Where a local server keeps its data: a module of its own, so that finding or starting the local daemon does
not import the server."""

from pathlib import Path

DEFAULT_DATA_DIR = Path("~/.mosaic/local-server")
DB_NAME = "mcli-local.db"
