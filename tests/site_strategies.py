"""Hypothesis strategies shared by the property tests: random sites."""

from hypothesis import strategies as st

from evflex.model import Charger, Feeder, Site


@st.composite
def sites(draw, max_chargers=6, max_connectors=2, limit_a=(5.0, 120.0), group_a=24.0, feeder_a=(8.0, 60.0)):
    """Random sites: 1- and 3-phase chargers with random phase rotations, 16 or 32 A, some
    on/off only, some with a shared charger limit or phase switching, 0.1 or 1 A
    resolution, sometimes a sub-feeder over the first half of the chargers."""
    n_ch = draw(st.integers(1, max_chargers))
    chargers = []
    for i in range(n_ch):
        phases = draw(st.sampled_from([1, 3, 3]))
        chargers.append(
            Charger(
                f"C{i + 1}",
                connectors=draw(st.integers(1, max_connectors)),
                phases=phases,
                phase_rotation=tuple(draw(st.permutations([0, 1, 2])))[:phases],
                max_current_a=draw(st.sampled_from([16.0, 32.0])),
                modulation=draw(st.sampled_from([True, True, False])),
                max_total_current_a=draw(st.sampled_from([None, None, group_a])),
                phase_switching=draw(st.booleans()),
                setpoint_resolution_a=draw(st.sampled_from([0.1, 1.0])),
            )
        )
    feeders = ()
    if n_ch > 1 and draw(st.booleans()):
        feeders = (Feeder("F1", draw(st.floats(*feeder_a)), tuple(c.id for c in chargers[: (n_ch + 1) // 2])),)
    unbalance = draw(st.sampled_from([None, None, 6.0, 20.0]))
    return Site("prop", 230.0, draw(st.floats(*limit_a)), tuple(chargers), feeders, max_unbalance_a=unbalance)


@st.composite
def line_to_line_sites(draw, max_chargers=6, limit_a=(10.0, 150.0)):
    """Random North-American style sites (120/208 V): single-phase EVSEs between two phases,
    some phase-to-neutral ones, sometimes a pod on one branch, a transformer with a delta
    primary, an unbalance limit."""
    n_ch = draw(st.integers(1, max_chargers))
    chargers = []
    for i in range(n_ch):
        conn = draw(st.sampled_from(["L1-L2", "L2-L3", "L3-L1", "L1-L2", "LN"]))
        chargers.append(
            Charger(
                f"C{i + 1}",
                connectors=draw(st.integers(1, 2)),
                phases=1,
                connection=conn,
                phase_rotation=(draw(st.integers(0, 2)),),
                max_current_a=draw(st.sampled_from([16.0, 32.0])),
                setpoint_resolution_a=draw(st.sampled_from([0.1, 1.0])),
            )
        )
    pods = [c.id for c in chargers if c.connection == "L1-L2"]
    feeders = (
        (Feeder("pod", draw(st.floats(10.0, 60.0)), tuple(pods), phases=(0,)),) if pods and draw(st.booleans()) else ()
    )
    kw = draw(st.sampled_from([None, 20.0, 60.0]))
    return Site(
        "prop-ll",
        120.0,
        draw(st.floats(*limit_a)),
        tuple(chargers),
        feeders,
        transformer_kw=kw,
        transformer_primary_ll_v=480.0 if kw and draw(st.booleans()) else None,
        max_unbalance_a=draw(st.sampled_from([None, 10.0, 30.0])),
    )
