"""HTML reports: downsampling kernels, the single-run page and the strategy comparison."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from evflex.model import Charger, SessionTable, Site
from evflex.report import comparison_table, write_comparison_report, write_report
from evflex.report.html import (
    MAX_HEATMAP_ROWS,
    bucket_max,
    bucket_mean,
    bucket_min,
    bucket_size,
    group_max,
    plotlyjs_bytes,
    row_groups,
    to_script_json,
    typed_array,
)
from evflex.sim.engine import simulate
from evflex.sim.scenario import Scenario, SimulationConfig

START = datetime(2026, 3, 2, tzinfo=UTC)
S0 = START.timestamp()
HOUR_S = 3600.0
DAY_S = 86400.0
#: A report's own content (figures, tables) may add at most this much to plotly.js: the
#: bucketing bounds it whatever the run length: ~12 line traces x 3,000 points x 16 bytes
#: (base64 float64 time + float32 value) ~ 0.6 MB, the heat map 16 rows x 1,500 columns
#: x 5.3 bytes ~ 0.13 MB, ~450 sessions with hover text, a small template per figure.
CONTENT_BOUND_BYTES = 1_000_000
#: The whole file: plotly.js (~4.8 MB in plotly 6-7) plus the content bound, rounded up.
REPORT_BOUND_BYTES = 8_000_000
PLOTLYJS_SIGNATURE = get_plotlyjs()[:300]


def _site(name: str = "t", chargers: int = 4, limit_a: float = 63.0) -> Site:
    return Site(name, 230.0, limit_a, tuple(Charger(f"C{i}", connectors=2) for i in range(1, chargers + 1)))


def _small(strategy: str = "llf", name: str = "t", limit_a: float = 63.0):
    ids = ["a", "<i>s&1</i>", "c"]
    S = SessionTable.build(
        ids,
        [0, 1, 2],
        [S0 + 8 * HOUR_S] * 3,
        [S0 + 17 * HOUR_S] * 3,
        [20.0, 30.0, 10.0],
        phases=[3, 1, 3],
        max_power_kw=[11.0, 7.4, 11.0],
    )
    return simulate(Scenario(_site(name, limit_a=limit_a), S, SimulationConfig(start=START, days=1)), strategy)


def _daily(days: int, chargers: int, period_s: float = 60.0, seed: int = 0):
    """Every connector gets one session a day, arriving in the morning."""
    rng = np.random.default_rng(seed)
    n = 2 * chargers
    day = np.repeat(np.arange(days), n)
    arrival = S0 + day * DAY_S + rng.uniform(6, 10, days * n) * HOUR_S
    S = SessionTable.build(
        [f"s{k}" for k in range(days * n)],
        np.tile(np.arange(n), days),
        arrival,
        arrival + rng.uniform(4, 10, days * n) * HOUR_S,
        rng.uniform(5, 40, days * n),
        phases=np.full(days * n, 3),
        max_power_kw=np.full(days * n, 11.0),
    )
    cfg = SimulationConfig(start=START, days=days, period_s=period_s)
    return simulate(Scenario(_site("long", chargers), S, cfg), "llf")


def _n_points(array) -> int:
    """Length of a plotly array, plain or base64-typed."""
    if isinstance(array, dict):
        return len(base64.b64decode(array["bdata"])) // np.dtype(array["dtype"]).itemsize
    return len(array)


def _plot_args(page: str, div_id: str) -> tuple[list, dict, dict]:
    """(data, layout, config) passed to Plotly.newPlot for ``div_id``."""
    m = re.search(r'Plotly\.newPlot\("' + re.escape(div_id) + r'", ', page)
    assert m, div_id
    decoder, pos, args = json.JSONDecoder(), m.end(), []
    for end in (",", ",", ")"):
        value, pos = decoder.raw_decode(page, pos)
        assert page[pos] == end
        args.append(value)
        pos += 1
    return args[0], args[1], args[2]


def _figure_json(page: str, div_id: str) -> list:
    """The data array passed to Plotly.newPlot for ``div_id``."""
    return _plot_args(page, div_id)[0]


def _decoded(array) -> np.ndarray:
    """A plotly array, plain or base64-typed, as numpy."""
    if isinstance(array, dict):
        values = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]).newbyteorder("<"))
        shape = array.get("shape")
        return values.reshape([int(d) for d in shape.split(",")]) if shape else values
    return np.asarray(array)


@pytest.fixture(scope="module")
def small():
    return _small()


@pytest.fixture(scope="module")
def small_page(small, tmp_path_factory):
    path = write_report(small, tmp_path_factory.mktemp("r") / "sub" / "report.html")
    return path, path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- kernels
def test_bucket_max_keeps_a_single_spike():
    n = 100_000
    values = np.zeros(n)
    values[54_321] = 99.0
    times = np.arange(n) * 60.0
    t, v = bucket_max(values, times, 3000)
    assert len(v) <= 3000 and len(t) == len(v)
    assert v.max() == 99.0
    assert t[np.argmax(v)] <= times[54_321] < t[np.argmax(v)] + (t[1] - t[0])


@pytest.mark.parametrize("n", [1, 2999, 3000, 3001, 10_007, 100_000])
@pytest.mark.parametrize("period_s", [None, 60.0, 7.0])
def test_bucket_count_bound(n, period_s):
    t, v = bucket_max(np.random.default_rng(n).random(n), np.arange(n), 3000, period_s)
    size = bucket_size(n, 3000, period_s)
    assert len(v) == len(t) == -(-n // size) <= 3000


def test_bucket_size_rounds_to_a_round_duration():
    assert bucket_size(40_320, 3000, 60.0) == 15  # 14 steps -> 15 min
    assert bucket_size(20_160, 3000, 60.0) == 10
    assert bucket_size(40_320, 3000, 7.0) == 14  # no round duration is a whole number of steps
    assert bucket_size(100, 3000, 60.0) == 1
    with pytest.raises(ValueError):
        bucket_size(10, 0)


def test_bucket_mean_and_min():
    values = np.array([1.0, 3.0, 2.0, 6.0, 10.0])
    times = np.arange(5)
    t, mean = bucket_mean(values, times, 3)
    np.testing.assert_array_equal(t, [0, 2, 4])
    np.testing.assert_allclose(mean, [2.0, 4.0, 10.0])  # the last bucket holds one step
    _, low = bucket_min(values, times, 3)
    np.testing.assert_array_equal(low, [1.0, 2.0, 10.0])


def test_bucket_mean_preserves_energy_of_power():
    power_kw = np.random.default_rng(1).random((40_320, 2)) * 22.0
    _, mean = bucket_mean(power_kw, np.arange(40_320), 3000, 60.0)
    assert mean.shape == (2688, 2)
    np.testing.assert_allclose(mean.sum(axis=0) * 15, power_kw.sum(axis=0))


def test_kernels_on_columns_nan_and_empty():
    values = np.array([[1.0, np.nan], [np.nan, np.nan], [5.0, 2.0], [0.0, 1.0]])
    _, v = bucket_max(values, np.arange(4), 2)
    np.testing.assert_array_equal(v, [[1.0, np.nan], [5.0, 2.0]])
    t, v = bucket_max(np.zeros(0), np.zeros(0), 10)
    assert len(t) == len(v) == 0
    t, v = bucket_mean(np.arange(4.0), np.arange(4), 10)  # fits: returned as is
    np.testing.assert_array_equal(v, np.arange(4.0))


def test_group_max_and_row_groups():
    values = np.array([[1.0, 5.0, 2.0, 0.0], [7.0, 1.0, 1.0, 3.0]])
    labels, out = group_max(values, np.array([1, 0, 1, 0]))
    np.testing.assert_array_equal(labels, [0, 1])
    np.testing.assert_array_equal(out, [[5.0, 2.0], [3.0, 7.0]])
    charger_of = np.repeat(np.arange(150), 2)  # 300 connectors on 150 chargers
    np.testing.assert_array_equal(row_groups(charger_of, 400), np.arange(300))
    np.testing.assert_array_equal(row_groups(charger_of, 200), charger_of)
    assert len(np.unique(row_groups(charger_of, 50))) <= 50


# ---------------------------------------------------------------- single-run report
def test_report_written_with_figures(small_page):
    path, page = small_page
    assert path.is_file() and path.name == "report.html"
    for div_id in ("phase-currents", "site-power", "connector-heatmap", "session-energy", "session-histograms"):
        assert f'id="{div_id}"' in page
    for title in (
        "Phase current at the grid connection [A]",
        "Site power [kW]",
        "Connector current [A]",
        "Energy per session: delivered vs requested [kWh]",
        "Energy served [%]",
    ):
        assert title in page
    assert "Max phase current [A]" in page and "Steps over a limit" in page
    assert "2026-03-02 00:00 UTC" in page and "2026-03-03 00:00 UTC" in page
    assert "One point per 1 min step." in page  # a one-day run is not downsampled


def test_report_embeds_plotlyjs_once_and_nothing_external(small_page):
    _, page = small_page
    assert page.count(PLOTLYJS_SIGNATURE) == 1
    assert page.count("<script") == 1 + 5  # plotly.js and one per figure
    assert not re.search(r"<script[^>]+src=", page)
    assert "cdn.plot.ly" not in page.replace(get_plotlyjs(), "")  # plotly.js names it for geo maps only


def test_report_content(small, small_page):
    _, page = small_page
    phase = _figure_json(page, "phase-currents")
    assert [tr["name"] for tr in phase][:3] == ["L1", "L2", "L3"]
    assert any(tr["name"] == "limit" and tr["line"]["shape"] == "hv" for tr in phase)
    assert any(tr["name"].startswith("base load") for tr in phase)
    heat = _figure_json(page, "connector-heatmap")[0]
    assert heat["type"] == "heatmap" and heat["y"] == list(small.topology.connector_ids)
    names = [tr["name"] for tr in _figure_json(page, "site-power")]
    assert names == ["EV", "building", "PV generation", "site total"]


def test_report_escapes_user_text(tmp_path):
    page = write_report(_small(name="<b>x</b>"), tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<i>s&1</i>" not in page
    hover = [t for tr in _figure_json(page, "session-energy") for t in tr.get("text", [])]
    assert "&lt;i&gt;s&amp;1&lt;/i&gt; on C1-2" in hover


def test_long_run_stays_light(tmp_path):
    result = _daily(days=14, chargers=8)  # 16 connectors, 20,160 steps
    page_path = write_report(result, tmp_path / "report.html")
    size = page_path.stat().st_size
    assert size < REPORT_BOUND_BYTES
    assert size - len(get_plotlyjs()) < CONTENT_BOUND_BYTES
    page = page_path.read_text(encoding="utf-8")
    assert "Downsampled, each point: max (limit: min) over 10 min." in page
    assert "Downsampled, each point: mean over 10 min." in page
    assert "Downsampled, each cell: max over 15 min." in page  # heat map: <= 1,500 columns
    phase = _figure_json(page, "phase-currents")
    assert all(_n_points(tr["x"]) <= 3000 for tr in phase)
    assert _n_points(_figure_json(page, "connector-heatmap")[0]["x"]) <= 1500
    ts = result.timeseries
    for trace, col in zip(phase[:3], ("l1_a", "l2_a", "l3_a")):  # the peak of each phase survives
        assert _decoded(trace["y"]).max() == np.float32(ts[col].max())
    heat = _decoded(_figure_json(page, "connector-heatmap")[0]["z"])
    cols = [f"{c}_current_a" for c in result.topology.connector_ids]
    np.testing.assert_array_equal(heat.max(axis=1), ts[cols].to_numpy(np.float32).max(axis=0))


def test_violations_marked(pair, tmp_path):
    page = write_report(pair[1], tmp_path / "report.html").read_text(encoding="utf-8")
    assert "above limit" in [tr["name"] for tr in _figure_json(page, "phase-currents")]
    assert re.search(r'<td class="bad">[1-9]', page)


def test_many_connectors_grouped_by_charger(tmp_path):
    chargers = MAX_HEATMAP_ROWS // 2 + 10
    result = _daily(days=1, chargers=chargers, period_s=900.0)
    page = write_report(result, tmp_path / "report.html").read_text(encoding="utf-8")
    heat = _figure_json(page, "connector-heatmap")[0]
    assert heat["y"] == [f"C{i}" for i in range(1, chargers + 1)]
    assert "Rows: the maximum over the connectors of each charger" in page


# ---------------------------------------------------------------- comparison
@pytest.fixture(scope="module")
def pair():
    return [_small("llf", limit_a=20.0), _small("uncontrolled", limit_a=20.0)]


def test_comparison_table_matches_kpis(pair):
    table = comparison_table(pair)
    assert list(table.columns) == ["llf", "uncontrolled"]
    for r in pair:
        kpis = r.kpis
        col = table[kpis.pop("strategy")]
        assert list(col.index) == list(kpis)
        for key, value in kpis.items():
            assert col[key] == value, key
    assert list(comparison_table([pair[0], pair[0]]).columns) == ["llf", "llf (2)"]


def test_comparison_report(pair, tmp_path):
    assert pair[1].kpis["limit_violation_steps"] > 0 and pair[0].kpis["limit_violation_steps"] == 0
    page = write_comparison_report(pair, tmp_path / "comparison.html").read_text(encoding="utf-8")
    assert page.count(PLOTLYJS_SIGNATURE) == 1
    assert 'href="llf/report.html"' in page and 'href="uncontrolled/report.html"' in page
    for div_id in ("kpi-comparison", "strategy-bars", "strategy-max-current"):
        assert f'id="{div_id}"' in page
    row = re.search(r"<tr><td>Steps over a limit</td>(.*?)</tr>", page).group(1)
    cells = re.findall(r"<td( class=\"\w+\")?>([^<]*)</td>", row)
    assert cells[0] == ("", "0")
    assert cells[1] == (' class="bad"', f"{pair[1].kpis['limit_violation_steps']:,d}")
    served = re.search(r"<tr><td>Energy served \[%\]</td>(.*?)</tr>", page).group(1)
    best = int(np.argmax([r.kpis["energy_served_pct"] for r in pair]))
    assert re.findall(r"<td( class=\"\w+\")?>", served)[best] == ' class="best"'
    lines = _figure_json(page, "strategy-max-current")
    assert [tr["name"] for tr in lines] == ["llf", "uncontrolled", "limit"]


def test_comparison_report_needs_results(tmp_path):
    with pytest.raises(ValueError):
        write_comparison_report([], tmp_path / "c.html")


# ---------------------------------------------------------------- figure JSON
@pytest.mark.parametrize(
    "values, code",
    [
        (np.array([1.5, np.nan, -2.0], dtype=np.float32), "f4"),
        (np.array([1e300, 0.1]), "f8"),
        (np.array([True, False, True]), "i1"),
        (np.array([0, 7, -3], dtype=np.int64), "i4"),
        (np.array([2**40, 1], dtype=np.int64), "f8"),  # does not fit int32: sent as float64
        (np.array([200, 3], dtype=np.uint8), "u1"),
        (np.arange(6, dtype=np.float32).reshape(2, 3), "f4"),
        (np.array([1.0, 2.0], dtype=">f8"), "f8"),  # big-endian input goes out little-endian
    ],
)
def test_typed_array_round_trip(values, code):
    spec = typed_array(values)
    assert spec["dtype"] == code
    back = _decoded(spec)
    assert back.shape == values.shape
    np.testing.assert_array_equal(back, values.astype(back.dtype))


def test_typed_array_of_nothing_is_an_empty_list():
    assert typed_array(np.zeros(0)) == []
    assert typed_array(np.zeros((0, 3), dtype=np.float32)) == []


def test_script_json_cannot_close_the_script():
    obj = {"name": "</script><script>alert(1)</script>", "amp": "a&b", "n": np.float32(1.5), "v": np.arange(2)}
    text = to_script_json(obj)
    assert "<" not in text and ">" not in text and "&" not in text
    back = json.loads(text)
    assert back["name"] == obj["name"] and back["amp"] == "a&b" and back["n"] == 1.5
    np.testing.assert_array_equal(_decoded(back["v"]), [0, 1])


def test_every_figure_is_valid_plotly(small_page, pair, tmp_path):
    """plotly's own validators accept every trace and layout property we write."""
    comparison = write_comparison_report(pair, tmp_path / "c.html").read_text(encoding="utf-8")
    pages = {small_page[1]: ["phase-currents", "site-power", "connector-heatmap", "session-energy"]}
    pages[small_page[1]] += ["session-histograms"]
    pages[comparison] = ["strategy-bars", "strategy-max-current"]
    for page, ids in pages.items():
        for div_id in ids:
            data, layout, config = _plot_args(page, div_id)
            go.Figure(data=data, layout=layout)  # raises on an unknown or invalid property
            assert config == {"displaylogo": False, "responsive": True}
            assert isinstance(layout["title"], dict)  # plotly.js 3 takes titles as objects only


def test_figure_values_are_the_run(small, small_page):
    _, page = small_page
    ts = small.timeseries
    phase = _figure_json(page, "phase-currents")
    l1 = _decoded(phase[0]["y"])
    np.testing.assert_array_equal(l1, ts["l1_a"].to_numpy(np.float32))  # one day: one point per step
    t_ms = _decoded(phase[0]["x"])
    local = ts.index.tz_localize(None)
    assert t_ms[0] == local[0].value / 1e6 and len(t_ms) == len(ts)
    power = _figure_json(page, "site-power")
    np.testing.assert_allclose(_decoded(power[3]["y"]), ts["site_power_kw"].to_numpy(), rtol=1e-6)


# ---------------------------------------------------------------- shared plotly.js, notices
def test_report_can_load_a_shared_plotlyjs(small, tmp_path):
    page = write_report(small, tmp_path / "llf" / "report.html", plotlyjs_src="../plotly.min.js")
    text = page.read_text(encoding="utf-8")
    assert PLOTLYJS_SIGNATURE not in text
    assert re.findall(r'<script[^>]*\ssrc="([^"]+)"', text) == ["../plotly.min.js"]
    assert 'id="no-plotly"' in text  # says what is missing when the folder was split
    assert page.stat().st_size < len(plotlyjs_bytes()) / 4
    assert _figure_json(text, "phase-currents")  # the figures are all there


def test_plotlyjs_is_the_bundled_one():
    assert plotlyjs_bytes().decode("utf-8") == get_plotlyjs()


class _WithKpis:
    """A finished run whose KPIs say more (as the simulator's may)."""

    def __init__(self, result, **extra):
        self._result, self.kpis = result, {**result.kpis, **extra}

    def __getattr__(self, name):
        return getattr(self._result, name)


def _notice(page: str) -> str | None:
    m = re.search(r'<div class="notice" id="notices"[^>]*>(.*?)</div>', page, re.S)
    return m.group(1) if m else None


def test_report_opens_with_the_notices(small, small_page, tmp_path):
    assert _notice(small_page[1]) is None  # nothing to say
    run = _WithKpis(small, base_load_over_limit_steps=90, no_ev_can_charge=True)
    page = write_report(run, tmp_path / "report.html").read_text(encoding="utf-8")
    notice = _notice(page)
    assert notice is not None and page.index('id="notices"') < page.index('id="kpis"')
    assert "The base load alone is above the limit on 90 steps (90 min)" in notice
    assert "No EV can charge within the limit" in notice
    assert "No EV can charge" not in (
        _notice(write_report(_WithKpis(small, no_ev_can_charge=False), tmp_path / "f.html").read_text(encoding="utf-8"))
        or ""
    )


def test_comparison_says_which_runs_a_notice_concerns(pair, tmp_path):
    runs = [_WithKpis(pair[0], no_ev_can_charge=True), pair[1]]
    notice = _notice(write_comparison_report(runs, tmp_path / "c.html").read_text(encoding="utf-8"))
    assert notice is not None and "<strong>llf:</strong> No EV can charge within the limit" in notice
