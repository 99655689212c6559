"""The site: its grid connection, chargers, connectors and declared sub-limits.

Frozen dataclasses describing hardware. Everything the controllers compute on is compiled
from these into arrays by :mod:`evflex.model.topology`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evflex.units import IEC61851_MIN_CURRENT_A

#: Default charger response, after the practical attributes of seed 000 / 002 (activation
#: time, ramp-up/down time, precision): a few seconds from set-point to response.
DEFAULT_ACTIVATION_DELAY_S = 2.0
DEFAULT_RAMP_A_PER_S = 5.0
DEFAULT_PRECISION_A = 0.5
DEFAULT_SETPOINT_RESOLUTION_A = 0.1


@dataclass(frozen=True)
class ChargerResponse:
    """How a charger and the EV behind it follow a new set-point.

    Attributes
    ----------
    activation_delay_s : float
        Time from set-point reception to the start of the response [s].
    ramp_a_per_s : float
        Rate at which the drawn current moves toward the set-point [A/s].
    precision_a : float
        The EV draws up to this much *below* the set-point (IEC 61851-1: an EV never draws
        more than the pilot signal allows) [A].
    """

    activation_delay_s: float = DEFAULT_ACTIVATION_DELAY_S
    ramp_a_per_s: float = DEFAULT_RAMP_A_PER_S
    precision_a: float = DEFAULT_PRECISION_A


@dataclass(frozen=True)
class Charger:
    """A charger (EVSE) with one or more connectors.

    ``phase_rotation`` gives, for each of the charger's conductors L1, L2, L3 in order, the
    grid phase index (0 = L1) it is wired to: ``(1, 2, 0)`` puts a single-phase EV on grid L2.
    ``connector_rotations``, when given, has one such rotation per connector (sockets of one
    charger wired differently) and takes precedence.
    """

    id: str
    connectors: int = 1
    max_current_a: float = 16.0
    min_current_a: float = IEC61851_MIN_CURRENT_A
    phases: int = 3
    phase_rotation: tuple[int, ...] = (0, 1, 2)
    modulation: bool = True
    phase_switching: bool = False
    v2g: bool = False
    max_total_current_a: float | None = None
    setpoint_resolution_a: float = DEFAULT_SETPOINT_RESOLUTION_A
    response: ChargerResponse = field(default_factory=ChargerResponse)
    connector_rotations: tuple[tuple[int, ...], ...] = ()

    def connector_ids(self) -> list[str]:
        """Connector ids ``<charger id>-<n>``, n from 1."""
        return [f"{self.id}-{k}" for k in range(1, self.connectors + 1)]

    def rotation(self, k: int) -> tuple[int, ...]:
        """Grid phase of each conductor of connector ``k`` (0-based), ``phases`` long."""
        rot = self.connector_rotations[k] if self.connector_rotations else self.phase_rotation
        return tuple(rot[: self.phases])


@dataclass(frozen=True)
class Feeder:
    """A sub-feeder or charger-group limit: ``limit_a`` on each listed grid phase of the sum
    over the listed chargers' connectors. ``includes_base_load`` adds the site base load
    (for a limit upstream of the building, e.g. a transformer)."""

    id: str
    limit_a: float
    chargers: tuple[str, ...]
    phases: tuple[int, ...] = (0, 1, 2)
    includes_base_load: bool = False


@dataclass(frozen=True)
class Site:
    """A charging site behind one grid connection with a per-phase current limit."""

    name: str
    voltage_ln_v: float
    connection_limit_a: float
    chargers: tuple[Charger, ...]
    feeders: tuple[Feeder, ...] = ()

    def connector_ids(self) -> list[str]:
        return [cid for ch in self.chargers for cid in ch.connector_ids()]
