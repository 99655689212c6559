"""Command-line entry points: parse, call the library, print."""
