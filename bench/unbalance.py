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
from evflex.sim.foretold import simulate_foretold

ROOT = Path(__file__).resolve().parent.parent
LIMIT_A = 20.0


def main() -> None:
    sc = evflex.read_scenario(ROOT / "examples" / "caltech_acn.toml")
    sc = replace(sc, site=replace(sc.site, max_unbalance_a=LIMIT_A))
    days = sc.simulation.days
    print(f"Caltech ACN, max_unbalance_a = {LIMIT_A:g} A, {days:g} days at {sc.simulation.period_s:g} s steps")
    for strategy in ("llf", "edf", "equal", "proportional"):
        res, foretold = simulate_foretold(sc, strategy)
        rec, topo, k = res.record, res.topology, res.kpis
        drawn_a = np.where(res.surprising(), foretold, rec.end_a)
        as_foretold = topo.unbalance(topo.row_loads_over_time(drawn_a, rec.drawn, rec.base_a))
        print(
            f"{strategy:<13} over at the meters {k['unbalance_violation_steps']:4d} of {k['steps']} steps "
            f"(up to {k['phase_unbalance_max_a']:.1f} A), "
            f"{k['unbalance_violation_surprise_steps']:4d} with a surprise; "
            f"surprising EVs as foretold: worst {max(as_foretold.max() - LIMIT_A, 0.0):.2f} A over; "
            f"served {k['energy_served_pct']:.2f} %"
        )


if __name__ == "__main__":
    main()
