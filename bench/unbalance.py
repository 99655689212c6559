"""Unbalance at the meters: the Caltech ACN site with ``max_unbalance_a = 20`` (the README's
figures): ``python bench/unbalance.py`` (the example's 28 days).

Per strategy: the steps on which the meters read the phase currents more than 20 A apart;
how many of those an EV surprised the controller in (took less than a newly offered
current, or stopped on its own); the worst excess left if the surprising EVs had drawn what
the controller foretold (the rest: batteries tapering between readings); energy served.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

import evflex
from evflex.control.allocation import make_controller
from evflex.model import compile_topology
from evflex.sim.engine import simulate

ROOT = Path(__file__).resolve().parent.parent
LIMIT_A = 20.0


class Foretelling:
    """The allocation controller, keeping at each call the draws it foretells for its answer."""

    def __init__(self, sc, strategy):
        self.inner = make_controller(compile_topology(sc.site), strategy, sc.controller)
        self.topology = self.inner.topology
        self.foretold: dict[float, np.ndarray] = {}

    def reset(self):
        self.inner.reset()

    def step(self, snap):
        out = self.inner.step(snap)
        self.foretold[snap.time_s] = self.inner.learning.predicted(out.current_a)
        return out


def main() -> None:
    sc = evflex.read_scenario(ROOT / "examples" / "caltech_acn.toml")
    sc = replace(sc, site=replace(sc.site, max_unbalance_a=LIMIT_A))
    days = sc.simulation.days
    print(f"Caltech ACN, max_unbalance_a = {LIMIT_A:g} A, {days:g} days at {sc.simulation.period_s:g} s steps")
    for strategy in ("llf", "edf", "equal", "proportional"):
        ctrl = Foretelling(sc, strategy)
        res = simulate(sc, strategy, controller=ctrl)
        rec, topo, k = res.record, res.topology, res.kpis
        foretold = np.zeros(rec.setpoint_a.shape)
        last = foretold[0]
        for i, t in enumerate(rec.times_s):
            last = ctrl.foretold.get(float(t), last)
            foretold[i] = last
        before = np.vstack([np.zeros((1, topo.n)), rec.setpoint_a[:-1]])
        sp, end = rec.setpoint_a, rec.end_a
        surprising = ((sp > before) & (end < sp - 0.05)) | ((sp > 0) & (end <= 1e-3))
        as_foretold = topo.unbalance(
            topo.row_loads_over_time(np.where(surprising, foretold, end), rec.drawn, rec.base_a)
        )
        print(
            f"{strategy:<13} over at the meters {k['unbalance_violation_steps']:4d} of {k['steps']} steps "
            f"(up to {k['phase_unbalance_max_a']:.1f} A), "
            f"{k['unbalance_violation_surprise_steps']:4d} with a surprise; "
            f"surprising EVs as foretold: worst {max(as_foretold.max() - LIMIT_A, 0.0):.2f} A over; "
            f"served {k['energy_served_pct']:.2f} %"
        )


if __name__ == "__main__":
    main()
