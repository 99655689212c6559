"""Time series held as step functions on POSIX seconds.

A value at ``times_s[k]`` holds until ``times_s[k + 1]`` (the convention of interval
meter data, which is stamped at the start of its interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepSeries:
    """A piecewise-constant series: ``values[k]`` holds on ``[times_s[k], times_s[k+1])``.

    ``values`` may be 1-D (one value per time) or 2-D (one row per time, e.g. three phases).
    ``known_from_s``, when given, is when each value became known (announced) [POSIX s]; by
    default a value is known from the moment it takes effect (``times_s``). A controller may
    see a value only from then on.
    """

    times_s: np.ndarray
    values: np.ndarray
    name: str = ""
    known_from_s: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = np.asarray(self.times_s, dtype=np.float64)
        if t.ndim != 1 or len(t) == 0 or np.any(np.diff(t) <= 0):
            raise ValueError("times_s must be a non-empty, strictly increasing 1-D array")
        v = np.asarray(self.values, dtype=np.float64)
        if v.shape[0] != len(t):
            raise ValueError("values must have one entry per time")
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "values", v)
        if self.known_from_s is not None:
            k = np.asarray(self.known_from_s, dtype=np.float64)
            if k.shape != t.shape:
                raise ValueError("known_from_s must have one entry per time")
            object.__setattr__(self, "known_from_s", k)

    @property
    def start_s(self) -> float:
        return float(self.times_s[0])

    @property
    def end_s(self) -> float:
        """End of coverage: the last stamp plus the median interval."""
        if len(self.times_s) == 1:
            return float("inf")
        return float(self.times_s[-1] + np.median(np.diff(self.times_s)))

    def sample(self, at_s: np.ndarray) -> np.ndarray:
        """Values holding at each of ``at_s`` (which must lie inside the coverage)."""
        idx = np.searchsorted(self.times_s, np.asarray(at_s, dtype=np.float64), side="right") - 1
        return self.values[np.clip(idx, 0, len(self.times_s) - 1)]

    def over_steps(self, starts_s: np.ndarray, period_s: float, reduce: np.ufunc) -> np.ndarray:
        """Each step's value, reduced with ``reduce`` (``np.minimum``, ``np.maximum``) over
        every value holding at some time during ``[start, start + period_s)``, so that a dip
        or a peak shorter than a step is not lost (the value at the step start when the
        series is as coarse as the steps)."""
        t = np.asarray(starts_s, dtype=np.float64)
        last = len(self.times_s) - 1
        first = np.clip(np.searchsorted(self.times_s, t, side="right") - 1, 0, last)
        stop = np.clip(np.searchsorted(self.times_s, t + period_s, side="left") - 1, 0, last)
        out = self.values[first].copy()
        for k in np.flatnonzero(stop > first):  # steps with a change inside them
            out[k] = reduce.reduce(self.values[first[k] : stop[k] + 1], axis=0)
        return out
