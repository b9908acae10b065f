"""The ``speecheq`` command line: a thin Typer front over the library."""

from speecheq.cli.main import app, main

__all__ = ["app", "main"]
