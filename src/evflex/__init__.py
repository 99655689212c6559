"""evflex: EV charging clusters as a reliable, valuable flexibility resource.

The public API (everything else is internal)::

    import evflex
    scenario = evflex.read_scenario("examples/dtu_risoe.toml")
    result = evflex.simulate(scenario, "llf")
    result.kpis          # dict
    result.timeseries    # pandas DataFrame, one row per step
    result.sessions      # pandas DataFrame, one row per session
    evflex.write_outputs(result, "out")  # kpis.json, timeseries.parquet, sessions.csv, report.html
"""

from evflex.control.allocation import AllocationController, ControllerParams, make_controller
from evflex.control.interface import Controller, Setpoints, SiteSnapshot, Strategy
from evflex.errors import EvflexError, InvariantError, Problem, ValidationError
from evflex.io.scenario import parse_scenario, read_scenario
from evflex.io.sessions import read_sessions, sessions_frame, write_sessions_csv
from evflex.model import Charger, ChargerResponse, Feeder, SessionTable, Site, StepSeries, Topology, compile_topology
from evflex.sim.engine import simulate
from evflex.sim.results import SimulationResult
from evflex.sim.scenario import Scenario, SimulationConfig

__version__ = "0.1.0"


def simulate_all(scenario: Scenario, strategies=None, **kwargs) -> dict[str, SimulationResult]:
    """Simulate ``scenario`` under each strategy (default: all); results keyed by name."""
    chosen = [Strategy(s) for s in strategies] if strategies is not None else list(Strategy)
    return {s.value: simulate(scenario, s, **kwargs) for s in chosen}


def write_outputs(result: SimulationResult, out_dir, report: bool = True):
    """A run's output folder: see :func:`evflex.report.outputs.write_outputs`."""
    from evflex.report.outputs import write_outputs as _write

    return _write(result, out_dir, report)


def generate_sessions(*args, **kwargs):
    """Sessions from a behaviour model: see :func:`evflex.sim.behaviour.generate_sessions`."""
    from evflex.sim.behaviour import generate_sessions as _gen

    return _gen(*args, **kwargs)


def read_acn_data(path):
    """ACN-Data JSON export -> sessions DataFrame: see :func:`evflex.io.acn.read_acn_data`."""
    from evflex.io.acn import read_acn_data as _read

    return _read(path)


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
    "write_outputs",
    "write_sessions_csv",
]
