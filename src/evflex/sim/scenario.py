"""A scenario: everything one simulation run needs, already parsed and validated."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from pathlib import Path

from evflex.control.allocation.controller import ControllerParams
from evflex.control.interface import Strategy
from evflex.markets.tariff import Tariff
from evflex.model.series import StepSeries
from evflex.model.sessions import DEFAULT_TAPER_SOC, SessionTable
from evflex.model.site import Site


@dataclass(frozen=True)
class SimulationConfig:
    """How to run.

    Attributes
    ----------
    start : datetime
        Start of the simulated window (timezone-aware).
    days : float
        Length of the window [d].
    period_s : float
        Control and simulation step [s].
    strategy : Strategy
    seed : int
        Seed of the charger-precision noise (and of generated inputs).
    ev_limits_known : bool
        Whether the controller is told each EV's own current limit and phases (as with
        ISO 15118) or has to learn them from the meters (OCPP 1.6 reality).
    taper_soc : float
        State of charge where the CC-CV taper starts [0-1].
    timezone : tzinfo
        Zone used for local times in outputs and generated behaviour.
    metering_delay_s : float
        Age of the measurements a controller sees: the meters' readings (connectors, base
        load) at a control step are those of the last step boundary at least this long ago [s].
    """

    start: datetime
    days: float = 28.0
    period_s: float = 60.0
    strategy: Strategy = Strategy.LLF
    seed: int = 1
    ev_limits_known: bool = False
    taper_soc: float = DEFAULT_TAPER_SOC
    timezone: tzinfo | None = None
    metering_delay_s: float = 0.0

    @property
    def tz(self) -> tzinfo:
        tz = self.timezone or self.start.tzinfo
        assert tz is not None, "start is timezone-aware"
        return tz

    @property
    def start_s(self) -> float:
        return self.start.timestamp()

    @property
    def n_steps(self) -> int:
        return int(round(self.days * 86400.0 / self.period_s))

    @property
    def end_s(self) -> float:
        return self.start_s + self.n_steps * self.period_s


@dataclass(frozen=True)
class Scenario:
    """A site, its sessions, its series and how to simulate them.

    ``base_load`` holds per-phase currents (k, 3) [A] of the building; ``pv`` the PV output
    per phase (k, 3) [A, generation positive]; ``connection_limit`` a time-varying per-phase
    limit (k,) [A] replacing the static one where given (values may carry when they were
    announced: ``known_from_s``); ``tariff`` what the site pays (costs in the KPIs).
    """

    site: Site
    sessions: SessionTable
    simulation: SimulationConfig
    controller: ControllerParams = field(default_factory=ControllerParams)
    base_load: StepSeries | None = None
    pv: StepSeries | None = None
    connection_limit: StepSeries | None = None
    source: Path | None = None
    sessions_source: str = ""
    tariff: Tariff | None = None

    def with_source(self, path: Path) -> Scenario:
        """The same scenario, remembering the file it was read from."""
        return replace(self, source=path)
