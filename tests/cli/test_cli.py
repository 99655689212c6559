"""The command line, end to end, through the real entry point."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]

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


def evflex(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "evflex", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def case(tmp_path):
    (tmp_path / "scenario.toml").write_text(textwrap.dedent(SCENARIO))
    (tmp_path / "sessions.csv").write_text("\n".join([HEADER] + ROWS) + "\n")
    return tmp_path


def test_simulate_writes_every_output(case):
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
    assert "edf" in r.stdout and "results in" in r.stdout


def test_strategy_all_compares(case):
    r = evflex("simulate", "scenario.toml", "--strategy", "all", "--out", "all", "-q", cwd=case)
    assert r.returncode == 0, r.stderr
    for s in ("uncontrolled", "equal", "edf", "llf", "proportional"):
        assert (case / "all" / s / "kpis.json").exists()
        assert s in r.stdout
    cmp = pd.read_csv(case / "all" / "comparison.csv", index_col=0)
    assert list(cmp.columns) == ["uncontrolled", "equal", "edf", "llf", "proportional"]
    assert float(cmp.loc["limit_violation_steps", "uncontrolled"]) > 0
    assert all(float(cmp.loc["limit_violation_steps", s]) == 0 for s in ("equal", "edf", "llf", "proportional"))
    assert (case / "all" / "report.html").exists()


def bad(case, rows=None, header=HEADER, scenario=None):
    if rows is not None:
        (case / "sessions.csv").write_text("\n".join([header] + rows) + "\n")
    if scenario is not None:
        (case / "scenario.toml").write_text(scenario)
    r = evflex("simulate", "scenario.toml", "--out", "res", cwd=case)
    assert r.returncode == 2
    assert not (case / "res").exists()  # nothing written
    assert "Traceback" not in r.stderr
    return r.stderr.splitlines()


def test_bad_sessions_exit_2_with_one_line_per_problem(case):
    rows = list(ROWS)
    rows[1] = "s2,C1-2,2026-03-02T12:00:00+01:00,2026-03-02T08:10:00+01:00,15,7.4,1"  # departure first
    rows[2] = "s3,C2-1,2026-03-02T08:20:00+01:00,2026-03-02T16:00:00+01:00,-30,11,3"  # negative energy
    rows[3] = "s4,C9-2,2026-03-02T09:00:00+01:00,2026-03-02T18:00:00+01:00,25,22,3"  # unknown connector
    assert bad(case, rows) == [
        "sessions.csv:5: connector_id='C9-2': unknown connector (the site has C1-1, C1-2, C2-1, C2-2, C3-1, C3-2)",
        "sessions.csv:3: departure='2026-03-02T08:10:00+01:00': not after arrival '2026-03-02T12:00:00+01:00'",
        "sessions.csv:4: energy_kwh='-30': must be >= 0",
    ]


def test_missing_column(case):
    header = "session_id,connector_id,arrival,departure"
    assert bad(case, [",".join(r.split(",")[:4]) for r in ROWS], header=header) == [
        "sessions.csv: missing required column 'energy_kwh'"
    ]


def test_malformed_toml(case):
    assert bad(case, scenario='[site]\nname = "x\nconnection_limit_a = 3\n') == [
        "scenario.toml: invalid TOML: Illegal character '\\n' (at line 2, column 10)"
    ]


def test_unknown_strategy(case):
    r = evflex("simulate", "scenario.toml", "--strategy", "fastest", "--out", "res", cwd=case)
    assert r.returncode == 2 and not (case / "res").exists()
    assert r.stderr.splitlines() == [
        "--strategy: strategy='fastest': unknown strategy "
        "(choose from uncontrolled, equal, edf, llf, proportional, all)"
    ]


def test_failed_run_keeps_previous_outputs(case):
    assert evflex("simulate", "scenario.toml", "--out", "res", "-q", cwd=case).returncode == 0
    before = (case / "res" / "kpis.json").read_text()
    (case / "sessions.csv").write_text(HEADER + "\nx,C1-1,bad,2026-03-02T17:00:00+01:00,1,11,3\n")
    r = evflex("simulate", "scenario.toml", "--out", "res", cwd=case)
    assert r.returncode == 2
    assert (case / "res" / "kpis.json").read_text() == before


def test_generate_then_simulate(case):
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


def test_generate_rejects_bad_options(case):
    r = evflex("sessions", "generate", "--profile", "beach", "--connectors", "0", "-o", "x.csv", cwd=case)
    assert r.returncode == 2 and not (case / "x.csv").exists()
    assert r.stderr.splitlines() == [
        "--profile: profile='beach': unknown profile (choose from workplace, home, public, fleet)",
        "--connectors: connectors=0: must be >= 1",
    ]


def test_import_acn_and_replay(case):
    src = ROOT / "tests" / "data" / "acn"
    fixture = sorted(p for p in src.glob("*.json") if "bad" not in p.name)[0]
    r = evflex(
        "sessions", "import", "--format", "acn-data", fixture, "--scenario", "scenario.toml", "-o", "acn.csv", cwd=case
    )
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(case / "acn.csv")
    assert len(df) > 0 and set(df["connector_id"]) <= {"C1-1", "C1-2", "C2-1", "C2-2", "C3-1", "C3-2"}


def test_validate(case):
    r = evflex("validate", "scenario.toml", cwd=case)
    assert r.returncode == 0 and "6 connectors" in r.stdout and "6 sessions" in r.stdout


def test_more_bad_input_exits_2_without_traceback(case):
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


def test_scenario_values_out_of_range(case):
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


def test_rerun_replaces_earlier_outputs(case):
    assert evflex("simulate", "scenario.toml", "--out", "res", "-q", cwd=case).returncode == 0
    assert (case / "res" / "kpis.json").exists()
    (case / "res" / "notes.txt").write_text("mine")
    assert evflex("simulate", "scenario.toml", "--strategy", "all", "--out", "res", "-q", cwd=case).returncode == 0
    assert not (case / "res" / "kpis.json").exists()  # the single run's files are gone
    assert (case / "res" / "llf" / "kpis.json").exists() and (case / "res" / "notes.txt").read_text() == "mine"
