"""Small reference data packaged with evflex (read with :mod:`importlib.resources`)."""
