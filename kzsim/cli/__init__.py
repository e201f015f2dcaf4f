"""The ``kzsim`` command line: thin commands that build a request, call the API and print."""

from kzsim.cli import analyses, init  # noqa: F401  (register their commands on main)
from kzsim.cli.commands import entry, main

__all__ = ["entry", "main"]
