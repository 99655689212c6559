import numpy as np

from evflex.model import Charger, Feeder, Site, compile_topology


def site(**kw):
    chargers = (
        Charger("A", connectors=2, phases=3, phase_rotation=(1, 2, 0), max_total_current_a=20.0),
        Charger("B", connectors=1, phases=1, phase_rotation=(2,)),
    )
    return Site("s", 230.0, 63.0, chargers, feeders=(Feeder("F", 25.0, ("B",), phases=(2,)),), **kw)


def test_connector_ids_and_rows():
    t = compile_topology(site())
    assert t.connector_ids == ("A-1", "A-2", "B-1")
    assert t.row_ids[:3] == ("connection:L1", "connection:L2", "connection:L3")
    assert "feeder:F:L3" in t.row_ids
    assert {r for r in t.row_ids if r.startswith("charger:A")} == {"charger:A:L1", "charger:A:L2", "charger:A:L3"}
    assert t.row_base.tolist() == [True, True, True] + [False] * (t.m - 3)


def test_single_phase_ev_loads_the_rotated_phase_only():
    t = compile_topology(site())
    # A-1 has a 1-phase EV: charger conductor L1 is wired to grid L2
    inc = t.incidence(np.array([1, 3, 1]))
    assert inc[0].tolist() == [0, 1, 0]
    assert inc[1].tolist() == [1, 1, 1]
    assert inc[2].tolist() == [0, 0, 1]  # the 1-phase charger on L3
    loads = t.row_loads(np.array([10.0, 16.0, 8.0]), np.array([1, 3, 1]))
    by = dict(zip(t.row_ids, loads))
    assert by["connection:L1"] == 16.0
    assert by["connection:L2"] == 26.0
    assert by["connection:L3"] == 24.0
    assert by["feeder:F:L3"] == 8.0
    assert by["charger:A:L2"] == 26.0


def test_two_phase_ev_uses_first_two_conductors():
    t = compile_topology(site())
    inc = t.incidence(np.array([2, 0, 0]))
    assert inc[0].tolist() == [0, 1, 1]
    assert inc[1].sum() == 0 and inc[2].sum() == 0
