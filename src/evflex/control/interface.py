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
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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


def _ev_value(
    ev: Mapping[str, Any], cid: str, probs: list, name: str, default: Any, ok, what: str, size: int = 1
) -> Any:
    """``ev[name]`` (or ``default``) as a float (``size`` floats); a problem is added to
    ``probs`` (and ``default`` returned) where it is not a number or fails ``ok``."""
    from evflex.errors import problem

    v = ev.get(name, default)
    try:
        x = np.asarray(v, dtype=np.float64).reshape(size)
    except (TypeError, ValueError):
        x = None
    if x is None or not ok(x).all():
        probs.append(problem("SiteSnapshot.build", f"{cid}: {what}", field=name, value=v))
        return default
    return x if size > 1 else float(x[0])


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

    @classmethod
    def build(
        cls,
        topology: Topology,
        time_s: float,
        evs: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        period_s: float = 60.0,
        base_load_a: Any = (0.0, 0.0, 0.0),
        connection_limit_a: float | None = None,
        measured_at_s: float = float("nan"),
    ) -> SiteSnapshot:
        """A snapshot from what one knows of each plugged EV, for driving a controller by hand
        (a test, a notebook, one's own back end).

        ``evs`` maps a connector id (``"C1-2"``) to what is known of the EV plugged in there,
        all optional: ``energy_kwh`` (still wanted; default 20), ``departure_s`` (POSIX;
        default ``time_s`` + 8 h), ``arrival_s`` (default ``time_s``), ``ev_max_current_a``,
        ``ev_phases``, ``measured_current_a`` (what its meter reads on each *grid* phase, 3
        values [A]) and ``session_key`` (default: the connector's index; change it when a new
        EV plugs in). Connectors not named are free. ``connection_limit_a`` replaces the
        connection rows' limit (a DSO signal); other rows keep the site's.

        Raises ValidationError on an unknown connector or field, or a value out of range.
        """
        from evflex.errors import ValidationError, problem

        n = topology.n
        index = {cid: i for i, cid in enumerate(topology.connector_ids)}
        t = float(time_s)
        plugged = np.zeros(n, dtype=bool)
        key = np.full(n, -1, dtype=np.int64)
        arrival, departure, energy, ev_max = (np.full(n, np.nan) for _ in range(4))
        phases = np.zeros(n, dtype=np.int64)
        measured = np.zeros((n, 3))
        known = {"energy_kwh", "departure_s", "arrival_s", "ev_max_current_a", "ev_phases", "measured_current_a"}
        probs = []
        for cid, ev in (evs or {}).items():
            if cid not in index:
                probs.append(problem("SiteSnapshot.build", "unknown connector", field="evs", value=cid))
                continue
            for name in set(ev) - known - {"session_key"}:
                probs.append(problem("SiteSnapshot.build", f"unknown field for {cid}", field=name, value=ev[name]))
            c = index[cid]
            value = functools.partial(_ev_value, ev, cid, probs)
            plugged[c] = True
            key[c] = int(value("session_key", c, lambda x: x == np.round(x), "must be an integer"))
            arrival[c] = value("arrival_s", t, np.isfinite, "must be a POSIX time")
            departure[c] = value("departure_s", t + 8 * 3600.0, np.isfinite, "must be a POSIX time")
            energy[c] = value("energy_kwh", 20.0, lambda x: np.isfinite(x) & (x >= 0), "must be >= 0")
            ev_max[c] = value("ev_max_current_a", np.nan, lambda x: np.isnan(x) | (x > 0), "must be > 0")
            phases[c] = int(value("ev_phases", 0, lambda x: np.isin(x, (0, 1, 2, 3)), "must be 0 (unknown) to 3"))
            measured[c] = value(
                "measured_current_a",
                (0.0, 0.0, 0.0),
                lambda x: np.isfinite(x) & (x >= 0),
                "must be 3 values >= 0 [A]",
                3,
            )
        if probs:
            raise ValidationError(probs)
        limits = topology.row_limit_a.copy()
        if connection_limit_a is not None:
            limits[topology.connection_rows] = float(connection_limit_a)
        return cls(
            time_s=t,
            period_s=float(period_s),
            plugged=plugged,
            session_key=key,
            arrival_s=arrival,
            departure_s=departure,
            energy_remaining_kwh=np.where(plugged, energy, 0.0),
            ev_max_current_a=ev_max,
            ev_phases=phases,
            measured_current_a=measured,
            base_load_a=np.asarray(base_load_a, dtype=np.float64).reshape(3),
            row_limit_a=limits,
            measured_at_s=measured_at_s,
        )


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
