"""The site's row systems as the controller builds them step after step: the coefficients and
Z by column kept up to date column by column must equal those built afresh (bit for bit), and
the cones computed once must hold whatever the EVs draw."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from evflex.control.allocation.constraints import SiteRows
from evflex.control.allocation.rows import CONE_COS
from evflex.model import Charger, Site, compile_topology


@st.composite
def mixed_sites(draw):
    """Line-to-line EVSEs beside three-phase chargers (whose EVs may draw on 1 to 3 phases),
    sometimes a delta primary, sometimes an unbalance limit."""
    chargers = []
    for i in range(draw(st.integers(9, 14))):
        ll = draw(st.sampled_from([None, "L1-L2", "L2-L3", "L3-L1"]))
        three = ll is None
        chargers.append(
            Charger(
                f"C{i + 1}",
                connectors=1,
                phases=3 if three else 1,
                connection=ll or "LN",
                phase_rotation=tuple(draw(st.permutations([0, 1, 2]))) if three else (0,),
                max_current_a=32.0,
            )
        )
    kw = draw(st.sampled_from([None, 40.0]))
    return Site(
        "mixed",
        230.0,
        draw(st.floats(30.0, 200.0)),
        tuple(chargers),
        (),
        transformer_kw=kw,
        transformer_primary_ll_v=10_000.0 if kw else None,
        max_unbalance_a=draw(st.sampled_from([None, 20.0])),
    )


@settings(max_examples=40, deadline=None)
@given(mixed_sites(), st.data())
def test_rows_kept_up_to_date_column_by_column_equal_rows_built_afresh(site, data):
    topo = compile_topology(site)
    kept = SiteRows(topo)
    base = np.array([5.0, 10.0, 0.0])
    drawn = topo.charger_phases.copy()
    for _ in range(6):
        c = data.draw(st.integers(0, topo.n - 1))  # one connector's EV changes its phases
        drawn = drawn.copy()
        drawn[c] = data.draw(st.integers(1, int(topo.charger_phases[c])))
        rows = kept.system(drawn, base, topo.row_limit_a)
        fresh = SiteRows(topo).system(drawn, base, topo.row_limit_a)
        assert np.array_equal(rows.M, fresh.M) and np.array_equal(rows.Z, fresh.Z)
        searched = type(rows).zcols.func(rows)  # Z by column searched afresh, not the kept one
        assert all(np.array_equal(a, b) for a, b in zip(rows.zcols, searched))
        d, narrow = rows.zcone
        for r in np.flatnonzero(narrow):
            z = rows.Z[r][rows.Z[r] != 0]
            assert np.all((z / np.abs(z) * np.conj(d[r])).real >= CONE_COS - 1e-12)


@settings(max_examples=10, deadline=None)
@given(mixed_sites())
def test_a_system_key_names_its_maker_and_inputs_and_take_extends_it(site):
    topo = compile_topology(site)
    a, b = SiteRows(topo), SiteRows(topo, margin_a=1.0)
    drawn, base = topo.charger_phases.copy(), np.array([5.0, 10.0, 0.0])
    ra = a.system(drawn, base, topo.row_limit_a)
    assert ra.key() != b.system(drawn, base, topo.row_limit_a).key()  # another maker (another margin)
    assert a.system(drawn, base + 1.0, topo.row_limit_a).key() != ra.key()
    again = a.system(drawn, base, topo.row_limit_a)
    assert again.key() == ra.key()
    mask = np.arange(topo.n) % 2 == 0
    assert ra.take(mask).key() == again.take(np.flatnonzero(mask)).key()
    assert ra.take(mask).key() != ra.take(~mask).key()
    # a system changed after it was made (shifted, spliced) falls back to its arrays
    assert ra.shifted(np.ones(topo.n)).key() != ra.key()
