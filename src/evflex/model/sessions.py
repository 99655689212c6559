"""Charging sessions as columns of arrays (one entry per session).

Times are POSIX seconds (UTC); unknown optional values are NaN (floats) or 0 (phases).
What a user *declared* on arrival (when they said they would leave, how much energy they
asked for) is kept apart from what really happened (``departure_s``, ``energy_kwh``): a
controller sees the declaration, the physics the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

#: Columns of a sessions table (DataFrame) as generators and importers return it, in order;
#: the sessions CSV contract's columns (see :mod:`evflex.io.sessions`).
SESSION_COLUMNS = (
    "session_id",
    "connector_id",
    "arrival",
    "departure",
    "energy_kwh",
    "max_power_kw",
    "phases",
    "battery_kwh",
    "soc_arrival",
    "v2g",
    "declared_departure",
    "declared_energy_kwh",
)

#: Grid-to-battery efficiency used when a session gives none (AC charging, 3-phase at
#: medium current: 0.87-0.90 in the V2G spec table of data/elaadnl).
DEFAULT_EFFICIENCY = 0.9
#: State of charge above which a battery leaves constant current for the constant-voltage
#: taper, the usual two-stage (CC-CV) approximation.
DEFAULT_TAPER_SOC = 0.8


@dataclass(frozen=True, eq=False)
class SessionTable:
    """Sessions, column-wise. ``connector`` indexes :attr:`Topology.connector_ids`.

    Attributes
    ----------
    session_id : ndarray of str
    connector : ndarray of int
    arrival_s, departure_s : ndarray of float
        Plug-in and plug-out [POSIX s].
    energy_kwh : ndarray of float
        Energy requested, at the meter [kWh].
    max_power_kw : ndarray of float
        The EV's own AC charging limit [kW]; NaN when unknown.
    max_current_a : ndarray of float
        The EV's onboard charger limit per phase [A]; NaN when unknown.
    phases : ndarray of int
        Phases the EV's onboard charger uses (1, 2 or 3); 0 when unknown.
    battery_kwh, soc_arrival : ndarray of float
        Usable battery capacity [kWh] and state of charge at arrival [0-1]; NaN when unknown.
    efficiency : ndarray of float
        Grid-to-battery efficiency [0-1].
    v2g : ndarray of bool
    declared_departure_s : ndarray of float
        Departure the user declared on arrival [POSIX s]; NaN where they declared none.
    declared_energy_kwh : ndarray of float
        Energy the user asked for on arrival [kWh]; NaN where they asked for none.
        Both default to all NaN, so tables built without them keep working.
    """

    session_id: np.ndarray
    connector: np.ndarray
    arrival_s: np.ndarray
    departure_s: np.ndarray
    energy_kwh: np.ndarray
    max_power_kw: np.ndarray
    max_current_a: np.ndarray
    phases: np.ndarray
    battery_kwh: np.ndarray
    soc_arrival: np.ndarray
    efficiency: np.ndarray
    v2g: np.ndarray
    declared_departure_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    declared_energy_kwh: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __post_init__(self) -> None:
        n = len(self.session_id)
        for name in ("declared_departure_s", "declared_energy_kwh"):
            v = np.asarray(getattr(self, name), dtype=np.float64)
            if v.size == 0 and n:
                v = np.full(n, np.nan)
            if v.shape != (n,):
                raise ValueError(f"{name} must have one entry per session")
            object.__setattr__(self, name, v)

    def __len__(self) -> int:
        return len(self.session_id)

    @classmethod
    def build(
        cls,
        session_id,
        connector,
        arrival_s,
        departure_s,
        energy_kwh,
        *,
        max_power_kw=None,
        max_current_a=None,
        phases=None,
        battery_kwh=None,
        soc_arrival=None,
        efficiency=None,
        v2g=None,
        declared_departure_s=None,
        declared_energy_kwh=None,
    ) -> SessionTable:
        """Assemble a table, filling absent optional columns with 'unknown'."""
        n = len(session_id)

        def col(x, fill, dtype):
            return np.full(n, fill, dtype=dtype) if x is None else np.asarray(x, dtype=dtype).copy()

        return cls(
            session_id=np.asarray(session_id, dtype=object),
            connector=col(connector, 0, np.int64),
            arrival_s=col(arrival_s, np.nan, np.float64),
            departure_s=col(departure_s, np.nan, np.float64),
            energy_kwh=col(energy_kwh, np.nan, np.float64),
            max_power_kw=col(max_power_kw, np.nan, np.float64),
            max_current_a=col(max_current_a, np.nan, np.float64),
            phases=col(phases, 0, np.int64),
            battery_kwh=col(battery_kwh, np.nan, np.float64),
            soc_arrival=col(soc_arrival, np.nan, np.float64),
            efficiency=col(efficiency, DEFAULT_EFFICIENCY, np.float64),
            v2g=col(v2g, False, bool),
            declared_departure_s=col(declared_departure_s, np.nan, np.float64),
            declared_energy_kwh=col(declared_energy_kwh, np.nan, np.float64),
        )

    def take(self, index) -> SessionTable:
        """A table of the selected rows (boolean mask or integer index)."""
        return SessionTable(**{f.name: getattr(self, f.name)[index] for f in fields(self)})
