"""What the world is and what a controller can know of it, step by step.

What belongs here: the site's series on the step grid as they really are (building load,
PV, connection limit: the physics and the checks use these), and as a real controller sees
them at each control step:

- **measurements** (the meters of the connectors and of the site's base load) as of the
  step's start, or as of the last step boundary at least ``metering_delay_s`` earlier;
- **scheduled limits** only as far as they are announced: a limit series value is known
  from its ``known_from`` time (by default from when it takes effect). At a control step
  the controller sees the lowest limit announced for any time within the coming step, or
  the value in effect when nothing newer is announced; a drop inside a step that was not
  announced in time is seen only at the next step, and the physics (which apply the actual
  series) report the time spent above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evflex.model.series import StepSeries
from evflex.model.topology import Topology
from evflex.units import CURRENT_TOL_A, N_PHASES


@dataclass(frozen=True)
class SiteSeries:
    """The site's series at each step start (N steps), as they really are.

    ``building_a``, ``pv_a``: (N, 3) per phase [A] (PV generation positive); ``base_a`` the
    difference (what flows through the rows that carry the base load); ``limit_a`` (N,)
    the connection limit per phase [A].
    """

    times_s: np.ndarray
    building_a: np.ndarray
    pv_a: np.ndarray
    limit_a: np.ndarray

    @property
    def base_a(self) -> np.ndarray:
        return self.building_a - self.pv_a


def per_phase(series: StepSeries | None, at_s: np.ndarray) -> np.ndarray:
    """(len(at_s), 3) values of a per-phase series at ``at_s`` (zeros without a series)."""
    if series is None:
        return np.zeros((len(at_s), N_PHASES))
    v = series.sample(at_s)
    return np.repeat(v[:, None], N_PHASES, axis=1) if v.ndim == 1 else v


def actual_series(
    base_load: StepSeries | None,
    pv: StepSeries | None,
    limit: StepSeries | None,
    static_limit_a: float,
    times_s: np.ndarray,
) -> SiteSeries:
    """The series as they are at each step start."""
    lim = limit.sample(times_s) if limit is not None else np.full(len(times_s), static_limit_a)
    return SiteSeries(times_s, per_phase(base_load, times_s), per_phase(pv, times_s), np.asarray(lim, dtype=float))


def measured_base_a(
    base_load: StepSeries | None, pv: StepSeries | None, times_s: np.ndarray, delay_steps: int, period_s: float
) -> np.ndarray:
    """(N, 3) base load (building minus PV) as the site meter shows it at each step [A]."""
    at = times_s - delay_steps * period_s
    return per_phase(base_load, at) - per_phase(pv, at)


def delay_steps(metering_delay_s: float, period_s: float) -> int:
    """Whole steps between a reading and the control step that sees it."""
    return int(np.ceil(metering_delay_s / period_s - 1e-9))


def announced_limit_a(
    limit: StepSeries | None, static_limit_a: float, times_s: np.ndarray, period_s: float
) -> np.ndarray:
    """(N,) the connection limit a controller sees at each step start [A]: the newest value
    announced for now, lowered by any value announced to take effect within the step."""
    N = len(times_s)
    if limit is None:
        return np.full(N, static_limit_a)
    t = limit.times_s
    known = limit.known_from_s if limit.known_from_s is not None else t
    ready = np.maximum(t, known)  # a value serves as "now" once in effect and announced
    first_ready = np.minimum.accumulate(ready[::-1])[::-1]  # the latest index ready by then
    now = np.searchsorted(first_ready, times_s, side="right") - 1
    seen = np.where(now >= 0, limit.values[np.maximum(now, 0)], limit.values[0])
    # values taking effect inside a step, announced by its start
    last = len(t) - 1
    inside_from = np.searchsorted(t, times_s, side="right")
    inside_to = np.searchsorted(t, times_s + period_s, side="left")
    for k in np.flatnonzero(inside_to > inside_from):
        idx = np.arange(inside_from[k], min(inside_to[k], last + 1))
        idx = idx[known[idx] <= times_s[k]]
        if idx.size:
            seen[k] = min(seen[k], float(limit.values[idx].min()))
    return seen.astype(np.float64)


def change_points(times_s: np.ndarray, period_s: float, *series: StepSeries | None) -> np.ndarray:
    """Times strictly inside the steps at which a series changes value: where the actual
    series differ from their value at the step start."""
    if not len(times_s):
        return np.zeros(0)
    end = times_s[-1] + period_s
    pts = [s.times_s[(s.times_s > times_s[0]) & (s.times_s < end)] for s in series if s is not None]
    if not pts:
        return np.zeros(0)
    allp = np.unique(np.concatenate(pts))
    on_grid = np.isclose(((allp - times_s[0]) / period_s) % 1.0, 0.0) | np.isclose(
        ((allp - times_s[0]) / period_s) % 1.0, 1.0
    )
    return allp[~on_grid]


def no_ev_can_charge(topo: Topology, series: SiteSeries) -> bool:
    """Whether the connection leaves less than the smallest minimum current on every phase
    at every step (a limit of 0 A, a static limit below 6 A, a base load filling it)."""
    if not topo.n or not len(series.times_s):
        return False
    room = series.limit_a[:, None] - np.maximum(series.base_a, 0.0)
    return bool(room.max() < float(topo.min_current_a.min()) - CURRENT_TOL_A)
