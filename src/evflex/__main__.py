"""``python -m evflex``: the command line."""

from evflex.cli.main import entry

entry()
