"""HTML reports: downsampling kernels, the single-run page and the strategy comparison."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import numpy as np
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
    row_groups,
)
from evflex.sim.engine import simulate
from evflex.sim.scenario import Scenario, SimulationConfig

START = datetime(2026, 3, 2, tzinfo=UTC)
S0 = START.timestamp()
HOUR_S = 3600.0
DAY_S = 86400.0
#: A report's own content (figures, tables) may add at most this much to plotly.js: the
#: bucketing bounds it whatever the run length: ~8 line traces x 3,000 points x 12 bytes
#: (base64 float64 time + float32 value) ~ 0.3 MB, the heat map 16 rows x 1,500 columns
#: x 5.3 bytes ~ 0.13 MB, ~450 sessions with hover text, ~60 kB of plotly templates.
CONTENT_BOUND_BYTES = 1_500_000
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


def _figure_json(page: str, div_id: str) -> list:
    """The data array passed to Plotly.newPlot for ``div_id``."""
    m = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*(\[.*?\]),\s*\{', page, re.S)
    assert m, div_id
    return json.loads(m.group(1))


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
    assert all(_n_points(tr["x"]) <= 3000 for tr in _figure_json(page, "phase-currents"))
    assert _n_points(_figure_json(page, "connector-heatmap")[0]["x"]) <= 1500


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
