"""The command line, end to end, through the real entry point: ``main([...])`` in this
process (fast), and ``python -m evflex`` in a subprocess where the process itself matters."""

import json
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import run_in_process
from plotly.offline import get_plotlyjs

ROOT = Path(__file__).resolve().parents[2]
PLOTLYJS_SIGNATURE = get_plotlyjs()[:300]
SCRIPT_SRC = re.compile(r'<script[^>]*\ssrc="([^"]+)"')
STRATEGIES = ("uncontrolled", "equal", "edf", "llf", "proportional")

SCENARIO = """
[site]
name = "small"
connection_limit_a = 32.0
base_load = { profile = "office", peak_kw = 6.0, base_kw = 1.0 }

[[chargers]]
count = 3
connectors = 2
phase_rotation = "cyclic"

[sessions]
file = "sessions.csv"

[simulation]
start = "2026-03-02T00:00:00+01:00"
timezone = "Europe/Copenhagen"
days = 2
strategy = "llf"
"""

HEADER = "session_id,connector_id,arrival,departure,energy_kwh,max_power_kw,phases"
ROWS = [
    "s1,C1-1,2026-03-02T08:00:00+01:00,2026-03-02T17:00:00+01:00,20,11,3",
    "s2,C1-2,2026-03-02T08:10:00+01:00,2026-03-02T12:00:00+01:00,15,7.4,1",
    "s3,C2-1,2026-03-02T08:20:00+01:00,2026-03-02T16:00:00+01:00,30,11,3",
    "s4,C2-2,2026-03-02T09:00:00+01:00,2026-03-02T18:00:00+01:00,25,22,3",
    "s5,C3-1,2026-03-02T09:30:00+01:00,2026-03-02T13:00:00+01:00,8,3.7,1",
    "s6,C3-2,2026-03-03T08:00:00+01:00,2026-03-03T17:00:00+01:00,18,11,3",
]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def evflex_process(*args, cwd):
    """``python -m evflex ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "evflex", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def case(tmp_path, monkeypatch):
    (tmp_path / "scenario.toml").write_text(textwrap.dedent(SCENARIO))
    (tmp_path / "sessions.csv").write_text("\n".join([HEADER] + ROWS) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def evflex(capsys):
    """``evflex ARGS`` through :func:`evflex.cli.main.main` in this process, run in ``cwd``."""

    def run(*args, cwd):
        assert Path.cwd() == Path(cwd)  # the case fixture moved there
        return Run(*run_in_process(capsys, args))

    return run


def test_simulate_writes_every_output(case, evflex):
    r = evflex("simulate", "scenario.toml", "--strategy", "edf", "--out", "res", cwd=case)
    assert r.returncode == 0, r.stderr
    out = case / "res"
    k = json.loads((out / "kpis.json").read_text())
    for key in (
        "strategy",
        "sessions",
        "steps",
        "period_s",
        "energy_requested_kwh",
        "energy_delivered_kwh",
        "energy_served_pct",
        "sessions_fully_served_pct",
        "unmet_energy_kwh",
        "peak_site_kw",
        "max_phase_current_a",
        "grid_limit_a",
        "limit_violation_steps",
        "phase_unbalance_max_a",
        "sim_wall_s",
    ):
        assert key in k
    assert k["strategy"] == "edf" and k["sessions"] == 6 and k["steps"] == 2880
    assert k["limit_violation_steps"] == 0 and k["max_phase_current_a"] <= 32.0 + 1e-3
    ts = pd.read_parquet(out / "timeseries.parquet")
    assert len(ts) == 2880 and str(ts.index.tz) == "Europe/Copenhagen"
    assert {"l1_a", "l2_a", "l3_a", "limit_a", "site_power_kw", "C1-1_current_a"} <= set(ts.columns)
    s = pd.read_csv(out / "sessions.csv")
    assert list(s["session_id"]) == ["s1", "s2", "s3", "s4", "s5", "s6"]
    assert {"delivered_kwh", "unmet_kwh", "finish"} <= set(s.columns)
    assert abs(s["delivered_kwh"].sum() - k["energy_delivered_kwh"]) < 1e-6
    html = (out / "report.html").read_text()
    assert "Phase current at the grid connection" in html and "small" in html
    assert html.count(PLOTLYJS_SIGNATURE) == 1 and not SCRIPT_SRC.search(html)  # one self-contained file
    assert not (out / "plotly.min.js").exists()
    assert 'id="notices"' not in html and "warning" not in r.stderr  # nothing to warn about
    assert "edf" in r.stdout and "results in" in r.stdout


def test_strategy_all_compares(case, evflex):
    r = evflex("simulate", "scenario.toml", "--strategy", "all", "--out", "all", "-q", cwd=case)
    assert r.returncode == 0, r.stderr
    for s in ("uncontrolled", "equal", "edf", "llf", "proportional"):
        assert (case / "all" / s / "kpis.json").exists()
        assert s in r.stdout
    cmp = pd.read_csv(case / "all" / "comparison.csv", index_col=0)
    assert list(cmp.columns) == ["uncontrolled", "equal", "edf", "llf", "proportional"]
    assert float(cmp.loc["limit_violation_steps", "uncontrolled"]) > 0
    assert all(float(cmp.loc["limit_violation_steps", s]) == 0 for s in ("equal", "edf", "llf", "proportional"))
    shared = case / "all" / "plotly.min.js"
    assert shared.read_text(encoding="utf-8") == get_plotlyjs()  # one copy of plotly.js for the folder
    pages = [case / "all" / "report.html"] + [case / "all" / s / "report.html" for s in STRATEGIES]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert PLOTLYJS_SIGNATURE not in html  # not inlined again
        srcs = SCRIPT_SRC.findall(html)
        assert len(srcs) == 1 and (page.parent / srcs[0]).resolve() == shared.resolve()
        assert page.stat().st_size < len(get_plotlyjs()) / 4


def bad(evflex, case, rows=None, header=HEADER, scenario=None):
    if rows is not None:
        (case / "sessions.csv").write_text("\n".join([header] + rows) + "\n")
    if scenario is not None:
        (case / "scenario.toml").write_text(scenario)
    r = evflex("simulate", "scenario.toml", "--out", "res", cwd=case)
    assert r.returncode == 2
    assert not (case / "res").exists()  # nothing written
    assert "Traceback" not in r.stderr
    return r.stderr.splitlines()


def test_bad_sessions_exit_2_with_one_line_per_problem(case, evflex):
    rows = list(ROWS)
    rows[1] = "s2,C1-2,2026-03-02T12:00:00+01:00,2026-03-02T08:10:00+01:00,15,7.4,1"  # departure first
    rows[2] = "s3,C2-1,2026-03-02T08:20:00+01:00,2026-03-02T16:00:00+01:00,-30,11,3"  # negative energy
    rows[3] = "s4,C9-2,2026-03-02T09:00:00+01:00,2026-03-02T18:00:00+01:00,25,22,3"  # unknown connector
    assert bad(evflex, case, rows) == [
        "sessions.csv:3: departure='2026-03-02T08:10:00+01:00': not after arrival '2026-03-02T12:00:00+01:00'",
        "sessions.csv:4: energy_kwh='-30': must be >= 0",
        "sessions.csv:5: connector_id='C9-2': unknown connector (the site has C1-1, C1-2, C2-1, C2-2, C3-1, C3-2)",
    ]


def test_missing_column(case, evflex):
    header = "session_id,connector_id,arrival,departure"
    assert bad(evflex, case, [",".join(r.split(",")[:4]) for r in ROWS], header=header) == [
        "sessions.csv: missing required column 'energy_kwh'"
    ]


def test_malformed_toml(case, evflex):
    assert bad(evflex, case, scenario='[site]\nname = "x\nconnection_limit_a = 3\n') == [
        "scenario.toml: invalid TOML: Illegal character '\\n' (at line 2, column 10)"
    ]


def test_unknown_strategy(case, evflex):
    r = evflex_process("simulate", "scenario.toml", "--strategy", "fastest", "--out", "res", cwd=case)
    assert r.returncode == 2 and not (case / "res").exists()
    assert r.stderr.splitlines() == [
        "--strategy: strategy='fastest': unknown strategy "
        "(choose from uncontrolled, equal, edf, llf, proportional, all)"
    ]


def test_failed_run_keeps_previous_outputs(case, evflex):
    assert evflex("simulate", "scenario.toml", "--out", "res", "-q", cwd=case).returncode == 0
    before = (case / "res" / "kpis.json").read_text()
    (case / "sessions.csv").write_text(HEADER + "\nx,C1-1,bad,2026-03-02T17:00:00+01:00,1,11,3\n")
    r = evflex("simulate", "scenario.toml", "--out", "res", cwd=case)
    assert r.returncode == 2
    assert (case / "res" / "kpis.json").read_text() == before


def test_generate_then_simulate(case, evflex):
    r = evflex(
        "sessions",
        "generate",
        "--profile",
        "workplace",
        "--scenario",
        "scenario.toml",
        "--days",
        "2",
        "--seed",
        "4",
        "-o",
        "gen.csv",
        cwd=case,
    )
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(case / "gen.csv")
    assert list(df.columns[:5]) == ["session_id", "connector_id", "arrival", "departure", "energy_kwh"]
    assert set(df["connector_id"]) <= {"C1-1", "C1-2", "C2-1", "C2-2", "C3-1", "C3-2"}
    r = evflex("simulate", "scenario.toml", "--sessions", "gen.csv", "--out", "res2", "-q", cwd=case)
    assert r.returncode == 0, r.stderr
    assert json.loads((case / "res2" / "kpis.json").read_text())["sessions"] == len(df)


def test_generate_rejects_bad_options(case, evflex):
    r = evflex("sessions", "generate", "--profile", "beach", "--connectors", "0", "-o", "x.csv", cwd=case)
    assert r.returncode == 2 and not (case / "x.csv").exists()
    assert r.stderr.splitlines() == [
        "--profile: profile='beach': unknown profile (choose from workplace, home, public, fleet)",
        "--connectors: connectors=0: must be >= 1",
    ]


def test_import_acn_and_replay(case, evflex):
    src = ROOT / "tests" / "data" / "acn"
    fixture = sorted(p for p in src.glob("*.json") if "bad" not in p.name)[0]
    r = evflex(
        "sessions", "import", "--format", "acn-data", fixture, "--scenario", "scenario.toml", "-o", "acn.csv", cwd=case
    )
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(case / "acn.csv")
    assert len(df) > 0 and set(df["connector_id"]) <= {"C1-1", "C1-2", "C2-1", "C2-2", "C3-1", "C3-2"}


def test_validate(case, evflex):
    r = evflex("validate", "scenario.toml", cwd=case)
    assert r.returncode == 0 and "6 connectors" in r.stdout and "6 sessions" in r.stdout


def test_a_limit_below_the_minimum_current_is_said_once_by_simulate_and_by_validate(case, evflex):
    (case / "scenario.toml").write_text(
        textwrap.dedent(SCENARIO).replace("connection_limit_a = 32.0", "connection_limit_a = 4.0")
    )
    r = evflex("validate", "scenario.toml", cwd=case)
    assert r.returncode == 0
    assert "no EV can ever charge: the connection limit (4 A) is below the 6 A minimum current" in r.stdout + r.stderr
    r = evflex("simulate", "scenario.toml", "--strategy", "all", "--out", "res", "-q", cwd=case)
    assert r.returncode == 0, r.stderr
    said = [ln for ln in (r.stdout + r.stderr).splitlines() if "no EV can" in ln]
    assert len(said) == 1 and said[0].startswith("warning: ") and "controlled strategies deliver nothing" in said[0]


def test_validate_states_a_limit_series(case, evflex):
    (case / "limit.csv").write_text("timestamp,limit_a\n2026-03-02T00:00:00+01:00,32\n2026-03-02T17:00:00+01:00,10\n")
    text = textwrap.dedent(SCENARIO).replace(
        "connection_limit_a = 32.0", 'connection_limit_a = 32.0\nconnection_limit_series = { file = "limit.csv" }'
    )
    (case / "scenario.toml").write_text(text)
    r = evflex("validate", "scenario.toml", cwd=case)
    assert r.returncode == 0, r.stderr
    assert "32 A per phase (a limit series: 10 to 32 A)" in r.stdout


def test_a_tariff_adds_its_cost_to_the_summary_table_however_narrow_the_terminal(case, evflex):
    text = textwrap.dedent(SCENARIO) + "\n[tariff]\nenergy_eur_per_kwh = 0.25\n"
    (case / "scenario.toml").write_text(text)
    r = evflex("simulate", "scenario.toml", "--strategy", "all", "--out", "res", "-q", cwd=case)
    assert r.returncode == 0, r.stderr
    header = next(ln for ln in r.stdout.splitlines() if "served %" in ln)
    assert header.rstrip().endswith("cost EUR")  # not dropped on an 80-column output
    k = json.loads((case / "res" / "llf" / "kpis.json").read_text())
    # the building's energy is paid too: more than the EVs' alone
    assert k["total_cost_eur"] == k["energy_cost_eur"] > 0.25 * k["energy_delivered_kwh"]


def test_validate_states_the_transformer_limits_of_the_caltech_site(evflex):
    r = evflex("validate", str(ROOT / "examples" / "caltech_acn.toml"), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    # 150 kW / 3 / 120 V on each secondary phase; 150 kW / 3 / (480 V / sqrt 3) on each primary line
    assert "54 connectors, 416.7 A per phase (transformer 150 kW, primary 180.4 A per line)" in r.stdout


def test_more_bad_input_exits_2_without_traceback(case, evflex):
    (case / "dir.csv").mkdir()
    r = evflex("simulate", "scenario.toml", "--sessions", "dir.csv", "--out", "res", cwd=case)
    assert r.returncode == 2 and r.stderr.startswith("dir.csv: cannot read:")
    r = evflex("simulate", "scenario.toml", "--days", "nan", "--seed", "-1", "--out", "res", cwd=case)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "--days: days=nan: must be within (0, 3660]",
        "--seed: seed=-1: must be >= 0",
    ]
    (case / "afile").write_text("x")
    r = evflex("simulate", "scenario.toml", "--out", "afile", cwd=case)
    assert r.returncode == 2 and r.stderr.splitlines() == ["--out: out='afile': is a file, not a directory"]
    rows = list(ROWS)
    rows[0] = "s1,C1-1,3026-03-02T08:00:00+01:00,3026-03-02T17:00:00+01:00,20,11,3"
    rows[1] = "s2,C1-2,2026-03-02T08:10:00+01:00,2026-03-02T12:00:00+01:00,1e308,7.4,1"
    rows[2] = "s3,C2-1,2026-03-02T08:20:00+01:00,2026-03-02T16:00:00+01:00,30,11,3,extra"
    (case / "sessions.csv").write_text("\n".join([HEADER] + rows) + "\n")
    r = evflex("simulate", "scenario.toml", "--out", "res", cwd=case)
    assert r.returncode == 2 and r.stderr.splitlines() == ["sessions.csv:4: has 8 fields, the header has 7"]
    del rows[2]
    (case / "sessions.csv").write_text("\n".join([HEADER] + rows) + "\n")
    r = evflex("simulate", "scenario.toml", "--out", "res", cwd=case)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "sessions.csv:2: arrival='3026-03-02T08:00:00+01:00': out of range (years 1970 to 2199)",
        "sessions.csv:2: departure='3026-03-02T17:00:00+01:00': out of range (years 1970 to 2199)",
        "sessions.csv:3: energy_kwh='1e308': implausibly large (over 10000)",
    ]
    assert not (case / "res").exists()


def test_scenario_values_out_of_range(case, evflex):
    text = (
        textwrap.dedent(SCENARIO)
        .replace("connection_limit_a = 32.0", "connection_limit_a = inf")
        .replace('phase_rotation = "cyclic"', 'phase_rotation = "cyclic"\nprecision_a = 7.0')
    )
    (case / "scenario.toml").write_text(text)
    r = evflex("simulate", "scenario.toml", "--out", "res", cwd=case)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "scenario.toml: site.connection_limit_a=inf: input should be a finite number",
        "scenario.toml: chargers[1]: precision_a (7) must be below min_current_a (6)",
    ]


def test_rerun_replaces_earlier_outputs(case, evflex):
    assert evflex("simulate", "scenario.toml", "--out", "res", "-q", cwd=case).returncode == 0
    assert (case / "res" / "kpis.json").exists()
    (case / "res" / "notes.txt").write_text("mine")
    assert evflex("simulate", "scenario.toml", "--strategy", "all", "--out", "res", "-q", cwd=case).returncode == 0
    assert not (case / "res" / "kpis.json").exists()  # the single run's files are gone
    assert (case / "res" / "llf" / "kpis.json").exists() and (case / "res" / "notes.txt").read_text() == "mine"
    assert (case / "res" / "plotly.min.js").exists()
    assert evflex("simulate", "scenario.toml", "--strategy", "edf", "--out", "res", "-q", cwd=case).returncode == 0
    assert not (case / "res" / "plotly.min.js").exists() and not (case / "res" / "llf").exists()
    assert not SCRIPT_SRC.search((case / "res" / "report.html").read_text(encoding="utf-8"))
    assert sorted(p.name for p in case.iterdir() if p.name.startswith(".res")) == []  # no temporary left


def _over_limit_case(case):
    """The base load alone is above the 32 A limit on L1 from 10:00 to 11:00."""
    text = (
        textwrap.dedent(SCENARIO)
        .replace(
            'base_load = { profile = "office", peak_kw = 6.0, base_kw = 1.0 }', 'base_load = { file = "load.csv" }'
        )
        .replace("days = 2", "days = 1")
    )
    (case / "scenario.toml").write_text(text)
    (case / "sessions.csv").write_text("\n".join([HEADER] + ROWS[:5]) + "\n")  # the first day's
    hours = [f"2026-03-02T{h:02d}:00:00+01:00,{40 if h == 10 else 5},5,5" for h in range(24)]
    (case / "load.csv").write_text("\n".join(["timestamp,l1_a,l2_a,l3_a"] + hours) + "\n")


WARNING = (
    "warning: the base load alone is above the limit on 60 steps (60 min): no controller can keep the site "
    "under the limit then; controlled strategies hold the EVs drawing on those phases at 0 A"
)


def test_base_load_above_limit_is_said(case, evflex):
    _over_limit_case(case)
    r = evflex("simulate", "scenario.toml", "--strategy", "llf", "--out", "res", "-q", cwd=case)
    assert r.returncode == 0, r.stderr
    kpis = json.loads((case / "res" / "kpis.json").read_text())
    assert kpis["base_load_over_limit_steps"] == 60 and kpis["limit_violation_steps"] == 0
    assert r.stderr.splitlines() == [WARNING]
    html = (case / "res" / "report.html").read_text(encoding="utf-8")
    notice = re.search(r'<div class="notice" id="notices"[^>]*>(.*?)</div>', html, re.S)
    assert notice and "The base load alone is above the limit on 60 steps" in notice.group(1)
    assert html.index('id="notices"') < html.index('id="kpis"')  # above the key figures


def test_base_load_above_limit_is_said_once_for_all_strategies(case, evflex):
    _over_limit_case(case)
    r = evflex("simulate", "scenario.toml", "--strategy", "all", "--out", "res", "-q", cwd=case)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [WARNING]  # the same for every strategy: said once
    for page in [case / "res" / "report.html"] + [case / "res" / s / "report.html" for s in STRATEGIES]:
        assert 'id="notices"' in page.read_text(encoding="utf-8"), page
