"""Power and current at line-to-line connectors use the voltage across the connector (208 V
at Caltech's 120/208 V site), not the phase-to-neutral voltage: a 32 A single-phase EVSE is
6.66 kW, not 3.84 kW."""

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from evflex.errors import ValidationError
from evflex.io.scenario import read_scenario
from evflex.io.sessions import read_sessions
from evflex.model.topology import compile_topology
from evflex.sim.behaviour import FEASIBLE_SHARE, RESPONSE_ALLOWANCE_S, generate_sessions
from evflex.sim.physics import deliverable_energy_kwh

CALTECH = Path(__file__).resolve().parents[2] / "examples" / "caltech_acn.toml"


@pytest.fixture(scope="module")
def topo():
    return compile_topology(read_scenario(CALTECH, days=1).site)


def test_the_caltech_connectors_are_208_v(topo):
    assert topo.line_to_line.all()
    assert np.allclose(topo.voltage_v, 120.0 * np.sqrt(3.0))
    assert np.isclose(32.0 * topo.voltage_v[0] / 1000.0, 6.66, atol=0.01)


def test_the_minimum_current_check_uses_the_line_to_line_voltage(tmp_path, topo):
    header = "session_id,connector_id,arrival,departure,energy_kwh,max_power_kw\n"
    row = "a,CA-148-1,2019-09-02T08:00:00-07:00,2019-09-02T12:00:00-07:00,5,{kw}\n"
    p = tmp_path / "s.csv"
    p.write_text(header + row.format(kw=1.3))  # 6.25 A at 208 V
    read_sessions(p, topo)
    p.write_text(header + row.format(kw=1.2))  # 5.77 A at 208 V (10 A at 120 V)
    with pytest.raises(ValidationError) as exc:
        read_sessions(p, topo)
    assert [str(x) for x in exc.value.problems] == ["s.csv:2: max_power_kw='1.2': below the 6 A minimum on 1 phase(s)"]


@pytest.mark.parametrize("profile", ["public", "workplace", "fleet"])
def test_generated_energies_are_capped_at_the_power_of_a_208_v_evse(topo, profile):
    start = datetime(2019, 9, 2, tzinfo=ZoneInfo("America/Los_Angeles"))
    df = generate_sessions(
        profile,
        list(topo.connector_ids),
        start,
        7,
        3,
        connector_phases=topo.charger_phases.tolist(),
        connector_max_current_a=topo.max_current_a.tolist(),
        voltage_ln_v=topo.voltage_ln_v,
        connector_voltage_v=topo.voltage_v.tolist(),
    )
    stay_s = (df["departure"] - df["arrival"]).dt.total_seconds().to_numpy()
    charging_s = np.maximum(FEASIBLE_SHARE * stay_s - RESPONSE_ALLOWANCE_S, 0.0)
    battery, soc = df["battery_kwh"].to_numpy(), df["soc_arrival"].to_numpy()

    def feasible(volts):
        power = np.minimum(df["max_power_kw"].to_numpy(), 32.0 * volts / 1000.0)  # one conductor pair
        return deliverable_energy_kwh(charging_s, power, battery, soc, 0.9, 0.8)

    energy = df["energy_kwh"].to_numpy()
    assert (energy <= feasible(208.0) + 1e-6).all()
    if profile == "public":  # short visits with big demands: some need more than 3.84 kW gives
        assert (energy > feasible(120.0) + 0.1).any()


def test_scenario_generated_sessions_on_caltech_use_208_v():
    sc = read_scenario(CALTECH, days=7)
    S, topo = sc.sessions, compile_topology(sc.site)
    rate_kw = S.energy_kwh / ((S.departure_s - S.arrival_s) / 3600.0)
    assert rate_kw.max() <= 32.0 * topo.voltage_v.max() / 1000.0 + 1e-9
