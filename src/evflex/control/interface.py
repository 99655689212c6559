"""The port between a controller and the world, whether simulated or live.

A controller receives a :class:`SiteSnapshot` (what is known at ``time_s``: who is plugged
in, what they asked for, what the meters read, what the limits are) and returns
:class:`Setpoints` (a current limit per connector). The simulator and the OCPP server both
build snapshots and apply set-points; the controller never sees anything else.

Applying set-points: decreases first, increases only once the decreases have taken effect,
so that the current through a constraint row never rises above the larger of its old and
its new value while the chargers respond.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from evflex.model.topology import Topology


class Strategy(str, enum.Enum):
    """Real-time allocation strategies."""

    UNCONTROLLED = "uncontrolled"  #: every EV at its maximum: shows the problem
    EQUAL = "equal"  #: equal current for all, round-robin when the limit is tight
    EDF = "edf"  #: earliest departure first
    LLF = "llf"  #: least laxity first
    PROPORTIONAL = "proportional"  #: power in proportion to remaining energy

    @classmethod
    def controlled(cls) -> list[Strategy]:
        return [s for s in cls if s is not cls.UNCONTROLLED]


@dataclass(frozen=True, slots=True, eq=False)
class SiteSnapshot:
    """What is known at ``time_s``. Arrays have one entry per connector (n) or per
    constraint row (m); unknown floats are NaN, unknown phase counts 0.

    Attributes
    ----------
    time_s : float
        POSIX time of the snapshot [s].
    period_s : float
        Time until the next control step [s].
    plugged : (n,) bool
    session_key : (n,) int
        Identifies the session on each connector (-1 when none); a new key means a new EV.
    arrival_s, departure_s : (n,) float
        Plug-in time and (declared) departure [POSIX s].
    energy_remaining_kwh : (n,) float
        Energy still requested [kWh].
    ev_max_current_a : (n,) float
        The EV's own per-phase current limit if it is known (e.g. ISO 15118) [A].
    ev_phases : (n,) int
        Phases the EV draws on, if known.
    measured_current_a : (n, 3) float
        Current each connector draws on each *grid* phase, as metered at ``time_s`` [A].
    base_load_a : (3,) float
        Site load other than the EVs (building, PV negative) on each grid phase [A].
    row_limit_a : (m,) float
        The limit of each constraint row for the coming step, as far as it is known (DSO
        signals and time-varying limits applied as announced) [A].
    measured_at_s : float
        When the meter readings were taken [POSIX s]; NaN: at ``time_s``.
    """

    time_s: float
    period_s: float
    plugged: np.ndarray
    session_key: np.ndarray
    arrival_s: np.ndarray
    departure_s: np.ndarray
    energy_remaining_kwh: np.ndarray
    ev_max_current_a: np.ndarray
    ev_phases: np.ndarray
    measured_current_a: np.ndarray
    base_load_a: np.ndarray
    row_limit_a: np.ndarray
    measured_at_s: float = float("nan")


@dataclass(frozen=True, slots=True, eq=False)
class Setpoints:
    """What a controller asks of each connector.

    Attributes
    ----------
    current_a : (n,) float
        Per-phase current limit; 0 pauses charging [A].
    phases : (n,) int
        Number of charger conductors to use (phase switching); the charger's own count
        unless the controller switched it.
    valid_until_s : float
        The controller's promise: asked again before this time [POSIX s] with nothing it
        sees changed but the clock, the energy its EVs take at these set-points (and meters
        reading them settled), it would answer the same. A caller may then skip asking.
        ``-inf`` (the default) promises nothing.
    reading_floor_a : (n,) float or None
        Part of that promise: it holds while each connector's meter reads at least this
        much [A] (an EV reading less, say in its battery's taper, would teach the controller
        something). None: the readings must not change at all.
    """

    current_a: np.ndarray
    phases: np.ndarray
    valid_until_s: float = float("-inf")
    reading_floor_a: np.ndarray | None = None


@runtime_checkable
class Controller(Protocol):
    """Anything that turns snapshots into set-points for one topology."""

    topology: Topology

    def step(self, snapshot: SiteSnapshot) -> Setpoints: ...

    def reset(self) -> None: ...
