"""Input and output at the edges: scenario files, sessions files, time series.

``read_*`` functions take paths, ``parse_*`` functions take already-read content; both
return model objects or raise :class:`~evflex.errors.ValidationError` with every problem.
"""
