"""The simulator's shortcuts give bit for bit what the general code gives: the charger bank
with at most one set-point waiting, set-points sent to empty queues, the early exit of the
steady-stretch kernel below the taper, the incidence rows."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evflex.model import Charger, Site, compile_topology
from evflex.sim import steady
from evflex.sim.engine import _Loop
from evflex.sim.physics import ChargerBank

AMPS = st.integers(0, 64).map(lambda k: k / 4)
DELAYS = st.sampled_from([0.0, 0.5, 2.0, 3.5, 12.0, 70.0])
RAMPS = st.sampled_from([0.5, 1.0, 5.0, 12.5])


def target_of(pilot):
    """An EV response with a floor, a limit and an offset, as the engine's."""
    return np.where(pilot >= 6.0, np.maximum(np.minimum(pilot, 13.0) - 0.25, 0.0), 0.0)


def same(a, b):
    return np.asarray(a).tobytes() == np.asarray(b).tobytes()


def banks(rows):
    i0, pilot0, sp, delay, ramp = (np.array(c, dtype=float) for c in zip(*rows))
    b = ChargerBank(delay, ramp, np.full(len(i0), 30.0))
    b.current_a, b.pilot_a, b.sent_a = i0.copy(), pilot0.copy(), pilot0.copy()
    return b, sp


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(AMPS, AMPS, AMPS, DELAYS, RAMPS), min_size=1, max_size=6), st.sampled_from([1.0, 10.0, 60.0]))
def test_one_set_point_waiting_takes_the_general_path_s_values(rows, period):
    b, sp = banks(rows)
    b.command(0.0, sp, None, target_of)
    ref = copy.deepcopy(b)
    t = 0.0
    for _ in range(3):
        got = b.advance(t, period, target_of)
        want = ref._advance_queue(t, period, target_of) if ref.queued else ref.advance(t, period, target_of)
        assert same(got[0], want[0]) and same(got[1], want[1])
        assert same(b.current_a, ref.current_a) and same(b.pilot_a, ref.pilot_a)
        assert same(b.queue_t, ref.queue_t) and same(b.count, ref.count) and b.queued == ref.queued
        t += period


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(AMPS, AMPS, AMPS, DELAYS, RAMPS), min_size=1, max_size=6))
def test_set_points_sent_to_empty_queues_queue_as_the_general_path_does(rows):
    b, sp = banks(rows)
    ref = copy.deepcopy(b)
    ref.queued = True  # the general path; every queue is empty all the same
    b.command(5.0, sp, None, target_of)
    ref.command(5.0, sp, np.zeros(len(sp), dtype=bool), target_of)
    for name in ("queue_t", "queue_a", "count", "last_t", "sent_a", "current_a", "pilot_a"):
        assert same(getattr(b, name), getattr(ref, name)), name


@settings(deadline=None, max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 1.0),
            st.sampled_from([20.0, 40.0, 77.0, np.inf]),
            st.sampled_from([6.0, 10.0, 16.0]),
            st.sampled_from([0.0, 6.0, 16.0]),
            st.floats(0.0, 0.5),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(2, 400),
    st.sampled_from([0.0, 0.5, 0.8]),
)
def test_the_steady_kernel_s_early_exit_changes_nothing(rows, steps, taper_soc):
    soc, battery, max_a, pilot, offset = (np.array(c, dtype=float) for c in zip(*rows))
    soc = np.where(np.isinf(battery), -np.inf, soc)
    args = (soc, battery, np.full(len(soc), 0.9), max_a, pilot, offset, np.full(len(soc), 3 * 230.0 * 60 / 3.6e6))
    got = steady.tapering_currents(*args, taper_soc, steps)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(steady, "TAPER_MARGIN", np.inf)  # the early exit never taken
        want = steady.tapering_currents(*args, taper_soc, steps)
    assert same(got, want)


def test_the_incidence_rows_are_the_topology_s_incidence():
    site = Site(
        name="t",
        voltage_ln_v=230.0,
        connection_limit_a=63.0,
        chargers=(
            Charger(id="A", connectors=3, max_current_a=16.0, phases=3, phase_rotation=(1, 2, 0)),
            Charger(id="B", connectors=2, max_current_a=32.0, phases=1, phase_rotation=(2, 0, 1)),
            Charger(id="C", connectors=2, max_current_a=32.0, phases=1, connection="L3-L1"),
        ),
    )
    topo = compile_topology(site)
    loop = _Loop.__new__(_Loop)
    loop.topo = topo
    loop.inc_rows = np.stack([topo.incidence(np.full(topo.n, d)) for d in range(4)], axis=1)
    rng = np.random.default_rng(1)
    for _ in range(50):
        drawn = rng.integers(0, 4, topo.n)
        assert same(loop._incidence(drawn), topo.incidence(drawn))
