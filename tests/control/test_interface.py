"""The controller port's helpers: a snapshot built by hand drives a controller."""

import numpy as np
import pytest

import evflex
from evflex.control.interface import SiteSnapshot
from evflex.errors import ValidationError
from evflex.model import Charger, Site, compile_topology


def topo():
    return compile_topology(Site("s", 230.0, 20.0, tuple(Charger(f"C{i + 1}", connectors=2) for i in range(2))))


def test_a_snapshot_built_by_hand_drives_a_controller():
    t = 1.7e9
    tp = topo()
    snap = SiteSnapshot.build(
        tp,
        t,
        {"C1-1": {"energy_kwh": 5.0, "departure_s": t + 3600}, "C2-2": {"energy_kwh": 30.0, "ev_phases": 1}},
        base_load_a=(4.0, 0.0, 0.0),
    )
    assert snap.plugged.tolist() == [True, False, False, True]
    assert snap.energy_remaining_kwh.tolist() == [5.0, 0.0, 0.0, 30.0]
    assert snap.ev_phases.tolist() == [0, 0, 0, 1]
    assert np.array_equal(snap.row_limit_a, tp.row_limit_a)
    sp = evflex.make_controller(tp, "edf").step(snap)
    assert sp.current_a[1] == 0.0 and sp.current_a[2] == 0.0  # free connectors get nothing
    assert sp.current_a[0] >= 6.0 and sp.current_a[3] >= 6.0
    drawn = np.where(snap.plugged, np.where(snap.ev_phases > 0, snap.ev_phases, 3), 0)
    loads = tp.row_loads(sp.current_a, drawn, snap.base_load_a)
    assert np.all(loads[tp.connection_rows] <= 20.0 + 1e-9)


def test_a_dso_limit_in_a_hand_built_snapshot_is_honoured():
    tp = topo()
    evs = {c: {"energy_kwh": 40.0} for c in tp.connector_ids}
    sp = evflex.make_controller(tp, "equal").step(SiteSnapshot.build(tp, 1.7e9, evs, connection_limit_a=12.0))
    assert sp.current_a.sum() <= 12.0 + 1e-9 and np.count_nonzero(sp.current_a) == 2  # two EVs at 6 A


def test_unknown_connectors_and_fields_are_named():
    with pytest.raises(ValidationError) as e:
        SiteSnapshot.build(topo(), 1.7e9, {"C9-1": {}, "C1-1": {"energy": 3.0}})
    text = str(e.value)
    assert "'C9-1'" in text and "unknown connector" in text and "energy" in text


def test_values_out_of_range_are_named_with_their_connector():
    evs = {"C1-1": {"ev_phases": 4, "measured_current_a": (1.0, 2.0)}, "C1-2": {"energy_kwh": "ten"}}
    with pytest.raises(ValidationError) as e:
        SiteSnapshot.build(topo(), 1.7e9, evs)
    text = str(e.value)
    assert "C1-1: must be 0 (unknown) to 3" in text and "ev_phases" in text
    assert "C1-1: must be 3 values >= 0 [A]" in text and "measured_current_a" in text
    assert "C1-2: must be >= 0" in text and "'ten'" in text
