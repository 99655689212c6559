"""Transients: a row over its limit while the chargers respond, its largest excess and how
long it lasts, checked against the charger physics worked out by hand."""

import numpy as np
import pytest
from test_engine import S0, START

from evflex.model import Charger, ChargerResponse, SessionTable, Site, StepSeries
from evflex.sim.engine import simulate
from evflex.sim.scenario import Scenario, SimulationConfig


def curtailed(connection: str, delay_s: float = 2.0, ramp_a_per_s: float = 5.0):
    """One EV taking 16 A until the limit drops to 10 A at 09:00: the controller sees the
    new limit at that step's start and lowers its set-point, the charger follows after its
    activation delay at its ramp rate (an exact charger: no precision offset)."""
    response = ChargerResponse(activation_delay_s=delay_s, ramp_a_per_s=ramp_a_per_s, precision_a=0.0)
    phases = 1 if connection != "LN" else 3
    charger = Charger("C1", phases=phases, connection=connection, max_current_a=16.0, response=response)
    site = Site("s", 120.0 if connection != "LN" else 230.0, 32.0, (charger,))
    arr = S0 + 8 * 3600.0
    S = SessionTable.build(["a"], [0], [arr], [arr + 4 * 3600.0], [60.0])
    limit = StepSeries(np.array([S0, S0 + 9 * 3600.0]), np.array([32.0, 10.0]))
    cfg = SimulationConfig(start=START, days=1, period_s=60.0)
    return simulate(Scenario(site, S, cfg, connection_limit=limit), "llf")


@pytest.mark.parametrize("connection", ["LN", "L1-L2"])
def test_a_curtailment_is_over_for_the_delay_and_the_ramp(connection):
    k = curtailed(connection).kpis
    # 16 A until the set-point takes effect at 2 s, then down at 5 A/s: 10 A at 3.2 s
    assert k["transient_overshoot_max_a"] == pytest.approx(6.0, abs=1e-3)
    assert k["transient_overshoot_s"] == pytest.approx(2.0 + 6.0 / 5.0, abs=1e-3)
    assert k["transient_overshoot_steps"] == 1
    assert k["limit_violation_steps"] == 0  # settled within the limit


def test_a_slower_charger_stays_over_longer():
    k = curtailed("LN", delay_s=10.0, ramp_a_per_s=1.0).kpis
    assert k["transient_overshoot_s"] == pytest.approx(10.0 + 6.0, abs=1e-2)
    assert k["transient_overshoot_max_a"] == pytest.approx(6.0, abs=1e-3)
