"""Output folders of a run and of a comparison of strategies."""

import json
import re
from datetime import UTC, datetime

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from evflex.model import Charger, SessionTable, Site
from evflex.report.outputs import OUTPUT_FILES, PLOTLYJS_FILE, write_comparison_outputs, write_outputs
from evflex.sim.engine import simulate
from evflex.sim.scenario import Scenario, SimulationConfig

START = datetime(2026, 3, 2, tzinfo=UTC)
H = 3600.0
SRC = re.compile(r'<script[^>]*\ssrc="([^"]+)"')


@pytest.fixture(scope="module")
def runs():
    S = SessionTable.build(
        ["a", "b"], [0, 1], [START.timestamp() + 8 * H] * 2, [START.timestamp() + 12 * H] * 2, [20.0, 10.0]
    )
    site = Site("t", 230.0, 16.0, (Charger("C1", connectors=2),))
    sc = Scenario(site, S, SimulationConfig(start=START, days=0.5, period_s=300.0))
    return [simulate(sc, s) for s in ("uncontrolled", "llf")]


def test_one_run(runs, tmp_path):
    out = write_outputs(runs[1], tmp_path / "one")
    assert sorted(p.name for p in out.iterdir()) == ["kpis.json", "report.html", "sessions.csv", "timeseries.parquet"]
    assert json.loads((out / "kpis.json").read_text())["strategy"] == "llf"
    assert not SRC.search((out / "report.html").read_text(encoding="utf-8"))  # self-contained
    assert set(p.name for p in write_outputs(runs[1], tmp_path / "bare", report=False).iterdir()) == {
        "kpis.json",
        "sessions.csv",
        "timeseries.parquet",
    }


def test_comparison_folder_shares_one_plotlyjs(runs, tmp_path):
    out = write_comparison_outputs(runs, tmp_path / "cmp")
    top = {p.name for p in out.iterdir()}
    assert top == {"uncontrolled", "llf", "comparison.csv", "report.html", PLOTLYJS_FILE}
    assert top - {"uncontrolled", "llf"} <= set(OUTPUT_FILES)  # what a rerun clears
    assert (out / PLOTLYJS_FILE).read_text(encoding="utf-8") == get_plotlyjs()
    for page in (out / "report.html", out / "llf" / "report.html", out / "uncontrolled" / "report.html"):
        (src,) = SRC.findall(page.read_text(encoding="utf-8"))
        assert (page.parent / src).resolve() == (out / PLOTLYJS_FILE).resolve()
    table = pd.read_csv(out / "comparison.csv", index_col=0)
    assert list(table.columns) == ["uncontrolled", "llf"]


def test_comparison_without_report_writes_no_html(runs, tmp_path):
    out = write_comparison_outputs(runs, tmp_path / "cmp", report=False)
    assert not list(out.rglob("*.html")) and not (out / PLOTLYJS_FILE).exists()
    assert (out / "llf" / "kpis.json").exists() and (out / "comparison.csv").exists()


def test_comparison_needs_distinct_strategies(runs, tmp_path):
    with pytest.raises(ValueError, match="distinct strategies"):
        write_comparison_outputs([runs[1], runs[1]], tmp_path / "x")
    with pytest.raises(ValueError):
        write_comparison_outputs([], tmp_path / "y")
