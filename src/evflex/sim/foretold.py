"""A run that keeps what the controller foretold: the draws the meters would read for each
answer (:meth:`evflex.control.allocation.learning.EvLearning.predicted`), at every step.

What belongs here: diagnostics of the controller's foretelling, for the tests and benches
that compare it with what the meters read. A run here is the ordinary run, the controller
wrapped, not changed.
"""

from __future__ import annotations

import numpy as np

from evflex.control.allocation import make_controller
from evflex.model import compile_topology
from evflex.sim.engine import simulate
from evflex.sim.results import SimulationResult
from evflex.sim.scenario import Scenario


class _Foretelling:
    """The allocation controller, keeping at each call the draws it foretells for its answer."""

    def __init__(self, sc: Scenario, strategy: str):
        self.inner = make_controller(compile_topology(sc.site), strategy, sc.controller)
        self.topology = self.inner.topology
        self.foretold: dict[float, np.ndarray] = {}

    def reset(self) -> None:
        self.inner.reset()

    def step(self, snap):
        out = self.inner.step(snap)
        self.foretold[snap.time_s] = self.inner.learning.predicted(out.current_a)
        return out


def simulate_foretold(sc: Scenario, strategy: str) -> tuple[SimulationResult, np.ndarray]:
    """Simulate ``sc`` under ``strategy``; also the (N, n) draws foretold for the answer in
    force at each step [A]."""
    ctrl = _Foretelling(sc, strategy)
    res = simulate(sc, strategy, controller=ctrl)
    times = res.record.times_s
    foretold = np.zeros(res.record.setpoint_a.shape)
    last = foretold[0]
    for k, t in enumerate(times):
        last = ctrl.foretold.get(float(t), last)
        foretold[k] = last
    return res, foretold
