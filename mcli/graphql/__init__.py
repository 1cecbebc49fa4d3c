"""The GraphQL layer: operation documents (`queries/`), the generated typed client (`generated/`), and scalars.

Downstream typed clients import the generated client and models from `mcli.graphql.generated`, and find the
schema with `mcli.graphql.schema_path()`.
"""

from pathlib import Path

# importlib.resources is imported where it is used: every first call loads this package (its enums), and the
# import costs a cold command ~10 ms.


def schema_sdl() -> str:
    """The MAPI schema (SDL) this package was generated from."""
    from importlib.resources import files

    return (files("mcli") / "schema.graphql").read_text(encoding="utf-8")


def schema_path() -> Path:
    """A filesystem path of the packaged schema."""
    from importlib.resources import as_file, files

    with as_file(files("mcli") / "schema.graphql") as path:
        return Path(path)
