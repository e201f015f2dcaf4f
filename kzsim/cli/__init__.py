"""The ``kzsim`` command line: thin commands that build a request, call the API and print."""

from kzsim.cli.commands import entry, main

__all__ = ["entry", "main"]
