"""Start-up stays light: the command line and ``import evflex`` load no numeric or plotting
library until a command needs it (checked on ``sys.modules`` in a fresh interpreter; how
long it takes is measured outside the tests)."""

import json
import subprocess
import sys

import pytest

import evflex

HEAVY = ("numpy", "pandas", "pyarrow", "plotly", "pydantic", "rich", "scipy")


def loaded_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; the heavy top-level packages loaded by then,
    and what it printed."""
    probe = (
        "import io, json, sys, contextlib\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))\n"
        "print(json.dumps({'heavy': heavy, 'out': out.getvalue()}))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_importing_the_cli_loads_nothing_heavy():
    assert loaded_after("import evflex.cli.main")["heavy"] == []


def test_importing_evflex_loads_nothing_heavy():
    assert loaded_after("import evflex\nevflex.__all__, evflex.__version__, evflex.ValidationError")["heavy"] == []


def test_help_loads_nothing_heavy():
    r = loaded_after("from evflex.cli.main import main\nassert main(['--help']) == 0")
    assert r["heavy"] == []
    for command in ("simulate", "validate", "strategies", "sessions"):
        assert command in r["out"]


def test_strategies_lists_every_strategy_without_loading_the_controller():
    r = loaded_after("from evflex.cli.main import main\nassert main(['strategies']) == 0")
    assert not {"numpy", "pandas", "pyarrow", "plotly", "rich"} & set(r["heavy"])
    assert [line.split()[0] for line in r["out"].splitlines()] == [s.value for s in evflex.Strategy]
    assert all(len(line.split()) > 1 for line in r["out"].splitlines())  # each with its description


def test_report_summary_and_outputs_load_nothing_heavy():
    assert loaded_after("import evflex.report.summary, evflex.report.outputs")["heavy"] == []


def test_the_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "evflex", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Usage:" in r.stdout and "simulate" in r.stdout


@pytest.mark.parametrize("name", evflex.__all__)
def test_every_public_name_resolves(name):
    assert getattr(evflex, name) is not None
    assert name in dir(evflex)


def test_public_names_are_the_real_objects():
    from evflex.report.outputs import write_outputs
    from evflex.sim.engine import simulate

    assert evflex.simulate is simulate and evflex.write_outputs is write_outputs
    from evflex import ValidationError, read_scenario  # noqa: F401 - the from-import form works too


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'simulte'"):
        evflex.simulte  # noqa: B018
