"""evflex: EV charging clusters as a reliable, valuable flexibility resource.

The public API (everything else is internal)::

    import evflex
    scenario = evflex.read_scenario("examples/dtu_risoe.toml")
    result = evflex.simulate(scenario, "llf")
    result.kpis          # dict
    result.timeseries    # pandas DataFrame, one row per step
    result.sessions      # pandas DataFrame, one row per session
    evflex.write_outputs(result, "out")  # kpis.json, timeseries.parquet, sessions.csv, report.html

Importing ``evflex`` is cheap: each public name is imported from its module on first use
(``evflex.simulate`` loads the simulator, numpy and pandas; ``evflex.ValidationError``
loads nothing heavy), so the command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from evflex.control.allocation import AllocationController, ControllerParams, make_controller
    from evflex.control.interface import Controller, Setpoints, SiteSnapshot, Strategy
    from evflex.errors import EvflexError, InvariantError, Problem, ValidationError
    from evflex.io.acn import read_acn_data
    from evflex.io.scenario import parse_scenario, read_scenario
    from evflex.io.sessions import read_sessions, sessions_frame, write_sessions_csv
    from evflex.model import (
        Charger,
        ChargerResponse,
        Feeder,
        SessionTable,
        Site,
        StepSeries,
        Topology,
        compile_topology,
    )
    from evflex.report.outputs import write_comparison_outputs, write_outputs
    from evflex.sim.behaviour import generate_sessions
    from evflex.sim.engine import simulate
    from evflex.sim.results import SimulationResult
    from evflex.sim.scenario import Scenario, SimulationConfig

__version__ = "0.1.0"

#: Where each public name lives; :func:`__getattr__` imports it from there on first use.
_HOMES: dict[str, str] = {
    "AllocationController": "evflex.control.allocation",
    "ControllerParams": "evflex.control.allocation",
    "make_controller": "evflex.control.allocation",
    "Controller": "evflex.control.interface",
    "Setpoints": "evflex.control.interface",
    "SiteSnapshot": "evflex.control.interface",
    "Strategy": "evflex.control.interface",
    "EvflexError": "evflex.errors",
    "InvariantError": "evflex.errors",
    "Problem": "evflex.errors",
    "ValidationError": "evflex.errors",
    "read_acn_data": "evflex.io.acn",
    "parse_scenario": "evflex.io.scenario",
    "read_scenario": "evflex.io.scenario",
    "read_sessions": "evflex.io.sessions",
    "sessions_frame": "evflex.io.sessions",
    "write_sessions_csv": "evflex.io.sessions",
    "Charger": "evflex.model",
    "ChargerResponse": "evflex.model",
    "Feeder": "evflex.model",
    "SessionTable": "evflex.model",
    "Site": "evflex.model",
    "StepSeries": "evflex.model",
    "Topology": "evflex.model",
    "compile_topology": "evflex.model",
    "write_comparison_outputs": "evflex.report.outputs",
    "write_outputs": "evflex.report.outputs",
    "generate_sessions": "evflex.sim.behaviour",
    "simulate": "evflex.sim.engine",
    "SimulationResult": "evflex.sim.results",
    "Scenario": "evflex.sim.scenario",
    "SimulationConfig": "evflex.sim.scenario",
}


def simulate_all(
    scenario: Scenario, strategies: Iterable[str | Strategy] | None = None, **kwargs: Any
) -> dict[str, SimulationResult]:
    """Simulate ``scenario`` under each strategy (default: all); results keyed by name."""
    from evflex.control.interface import Strategy
    from evflex.sim.engine import simulate

    chosen = [Strategy(s) for s in strategies] if strategies is not None else list(Strategy)
    return {s.value: simulate(scenario, s, **kwargs) for s in chosen}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (then it is a plain attribute)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'evflex' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AllocationController",
    "Charger",
    "ChargerResponse",
    "Controller",
    "ControllerParams",
    "EvflexError",
    "Feeder",
    "InvariantError",
    "Problem",
    "Scenario",
    "SessionTable",
    "Setpoints",
    "SimulationConfig",
    "SimulationResult",
    "Site",
    "SiteSnapshot",
    "StepSeries",
    "Strategy",
    "Topology",
    "ValidationError",
    "__version__",
    "compile_topology",
    "generate_sessions",
    "make_controller",
    "parse_scenario",
    "read_acn_data",
    "read_scenario",
    "read_sessions",
    "sessions_frame",
    "simulate",
    "simulate_all",
    "write_comparison_outputs",
    "write_outputs",
    "write_sessions_csv",
]
