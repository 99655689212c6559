import numpy as np
import pytest

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


# ---------------------------------------------------------------- line-to-line, phasor rows
SQ3 = np.sqrt(3.0)


def ll_site(**kw):
    chargers = (
        Charger("AB", connection="L1-L2", phases=1, max_current_a=32.0),
        Charger("BC", connection="L2-L3", phases=1, max_current_a=32.0),
        Charger("CA", connection="L3-L1", phases=1, max_current_a=32.0),
        Charger("N1", phases=1, phase_rotation=(0,)),  # a phase-to-neutral EVSE on L1
    )
    return Site("ll", 120.0, np.inf, chargers, **kw)


def test_line_to_line_phase_currents_are_phasor_sums():
    t = compile_topology(ll_site(transformer_kw=150.0, transformer_primary_ll_v=480.0))
    assert t.voltage_v.tolist() == pytest.approx([120 * SQ3] * 3 + [120.0])
    by = lambda x: dict(zip(t.row_ids, t.row_loads(np.asarray(x, dtype=float), np.ones(4, dtype=int))))  # noqa: E731
    # |I_A| = |I_AB - I_CA| = sqrt(I_AB^2 + I_CA^2 + I_AB I_CA): 120 degrees between the branches
    r = by([20.0, 0.0, 20.0, 0.0])
    assert r["connection:L1"] == pytest.approx(np.sqrt(400 + 400 + 400))
    assert r["connection:L2"] == pytest.approx(20.0) and r["connection:L3"] == pytest.approx(20.0)
    r = by([30.0, 10.0, 0.0, 0.0])
    assert r["connection:L1"] == pytest.approx(30.0)
    assert r["connection:L2"] == pytest.approx(np.sqrt(900 + 100 + 300))  # I_B = I_BC - I_AB
    assert r["connection:L3"] == pytest.approx(10.0)
    # a phase-to-neutral EV on L1 adds at 0 degrees, the AB branch at +30
    r = by([10.0, 0.0, 0.0, 16.0])
    assert r["connection:L1"] == pytest.approx(abs(10 * np.exp(1j * np.pi / 6) + 16))
    # the delta primary sees (I_a - I_c) / N, N = 480 / 120 = 4
    x = np.array([20.0, 5.0, 12.0, 7.0])
    w = t.injection(np.ones(4, dtype=int)).T @ x  # phase phasors
    r = by(x)
    for p, name in enumerate(("L1", "L2", "L3")):
        assert r[f"primary:{name}"] == pytest.approx(abs(w[p] - w[(p + 2) % 3]) / 4.0)
    assert t.row_limit_a[list(t.row_ids).index("connection:L1")] == pytest.approx(150e3 / 3 / 120)
    assert t.row_limit_a[list(t.row_ids).index("primary:L1")] == pytest.approx(150e3 / 3 / (480 / SQ3))


def test_rows_are_linear_exactly_where_their_currents_add_up():
    site = ll_site(feeders=(Feeder("pod", 80.0, ("AB",), phases=(0,)), Feeder("mix", 50.0, ("AB", "N1"), phases=(0,))))
    t = compile_topology(site)
    lin = dict(zip(t.row_ids, t.row_linear))
    assert lin["feeder:pod:L1"]  # one branch only: its magnitude is the sum of its EVSEs' currents
    assert not lin["feeder:mix:L1"] and not lin["connection:L1"]
    x = np.array([20.0, 0.0, 0.0, 10.0])
    loads = dict(zip(t.row_ids, t.row_loads(x, np.ones(4, dtype=int))))
    assert loads["feeder:pod:L1"] == pytest.approx(20.0)
    assert loads["feeder:mix:L1"] == pytest.approx(abs(20 * np.exp(1j * np.pi / 6) + 10))
    # a phase-to-neutral site stays all linear, and the matrix is the plain incidence
    assert compile_topology(site_without_ll()).all_linear


def site_without_ll():
    return Site("n", 230.0, 63.0, (Charger("A", connectors=2), Charger("B", phases=1, phase_rotation=(1,))))


def test_base_load_enters_phasor_rows_at_its_phase_angle():
    t = compile_topology(ll_site())
    base = np.array([10.0, 0.0, 0.0])
    loads = t.row_loads(np.array([0.0, 0.0, 20.0, 0.0]), np.ones(4, dtype=int), base)
    # I_A = 10 (at 0 deg) - 20 at 150 deg
    assert loads[0] == pytest.approx(abs(10 - 20 * np.exp(1j * 5 * np.pi / 6)))
    over_time = t.row_loads_over_time(np.array([[0.0, 0.0, 20.0, 0.0]]), np.ones((1, 4), dtype=int), base[None, :])
    assert over_time[0] == pytest.approx(loads)


def test_unbalance_is_the_spread_of_the_phase_currents():
    t = compile_topology(site_without_ll())
    loads = t.row_loads(np.array([10.0, 10.0, 16.0]), np.array([3, 3, 1]), np.array([5.0, 0.0, 0.0]))
    ph = loads[t.connection_rows]
    assert t.unbalance(loads) == pytest.approx(ph.max() - ph.min())
    assert ph.tolist() == pytest.approx([25.0, 36.0, 20.0])
