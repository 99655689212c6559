"""The site: its grid connection, chargers, connectors and declared sub-limits.

Frozen dataclasses describing hardware. Everything the controllers compute on is compiled
from these into arrays by :mod:`evflex.model.topology`.

Wiring. A charger is wired phase-to-neutral (``connection = "LN"``, the European default:
its conductors L1, L2, L3 go to the grid phases its ``phase_rotation`` names) or, single-phase,
line-to-line between two grid phases (``"L1-L2"``, ``"L2-L3"``, ``"L3-L1"``: North-American
208/240 V EVSEs, Norway's 230 V IT grid). A line-to-line EVSE's current flows out on its
first phase and back on its second, at the angle of that line-to-line voltage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from evflex.units import IEC61851_MIN_CURRENT_A, N_PHASES

#: Line-to-line connections: name -> (from phase, to phase), 0-based.
LINE_TO_LINE = {"L1-L2": (0, 1), "L2-L3": (1, 2), "L3-L1": (2, 0)}
#: The phase-to-neutral connection.
PHASE_TO_NEUTRAL = "LN"

#: Default charger response, after the practical attributes of seed 000 / 002 (activation
#: time, ramp-up/down time, precision): a few seconds from set-point to response.
DEFAULT_ACTIVATION_DELAY_S = 2.0
DEFAULT_RAMP_A_PER_S = 5.0
DEFAULT_PRECISION_A = 0.5
DEFAULT_SETPOINT_RESOLUTION_A = 0.1
#: A phase switch pauses the charge this long: the contactor opens, the EV sees the new
#: supply and re-negotiates before drawing again (tens of seconds on real EVs) [s].
DEFAULT_PHASE_SWITCH_S = 30.0


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
    phase_switch_s : float
        A switch between one and three phases pauses charging this long [s].
    """

    activation_delay_s: float = DEFAULT_ACTIVATION_DELAY_S
    ramp_a_per_s: float = DEFAULT_RAMP_A_PER_S
    precision_a: float = DEFAULT_PRECISION_A
    phase_switch_s: float = DEFAULT_PHASE_SWITCH_S


@dataclass(frozen=True)
class Charger:
    """A charger (EVSE) with one or more connectors.

    ``phase_rotation`` gives, for each of the charger's conductors L1, L2, L3 in order, the
    grid phase index (0 = L1) it is wired to: ``(1, 2, 0)`` puts a single-phase EV on grid L2.
    ``connector_rotations``, when given, has one such rotation per connector (sockets of one
    charger wired differently) and takes precedence. ``connection`` is ``"LN"`` or a
    line-to-line pair (:data:`LINE_TO_LINE`); a line-to-line charger has one conductor pair
    (``phases`` 1) and ignores the rotation.
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
    connection: str = PHASE_TO_NEUTRAL

    def __post_init__(self) -> None:
        if self.connection != PHASE_TO_NEUTRAL and self.connection not in LINE_TO_LINE:
            raise ValueError(f"connection {self.connection!r}: must be 'LN' or one of {', '.join(LINE_TO_LINE)}")
        if self.line_to_line and self.phases != 1:
            raise ValueError(f"charger {self.id}: a line-to-line charger has phases = 1")

    @property
    def line_to_line(self) -> bool:
        return self.connection in LINE_TO_LINE

    def connector_ids(self) -> list[str]:
        """Connector ids ``<charger id>-<n>``, n from 1."""
        return [f"{self.id}-{k}" for k in range(1, self.connectors + 1)]

    def rotation(self, k: int) -> tuple[int, ...]:
        """Grid phase of each conductor of connector ``k`` (0-based), ``phases`` long; for a
        line-to-line charger, the two phases it is wired between."""
        if self.line_to_line:
            return LINE_TO_LINE[self.connection]
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
    """A charging site behind one grid connection with a per-phase current limit.

    Attributes
    ----------
    voltage_ln_v : float
        Phase-to-neutral voltage [V] (230 in Europe, 120 on a North-American 120/208 V wye).
    connection_limit_a : float
        Per-phase current limit at the connection [A]; ``inf`` when only the transformer
        limits it.
    transformer_kw : float or None
        Rating of the transformer feeding the site [kW = kVA at unity power factor]: its
        secondary carries at most ``transformer_kw / (3 * voltage_ln_v)`` per phase (ACN-Sim's
        ``transformer_cap``), which also limits the connection rows.
    transformer_primary_ll_v : float or None
        Line-to-line voltage of a delta primary [V] (480 at Caltech): adds the primary's three
        line currents as rows, ``(I_a - I_c) / N`` etc. with ``N = primary_ll_v / voltage_ln_v``,
        each limited to ``transformer_kw / (3 * primary_ll_v / sqrt(3))``.
    max_unbalance_a : float or None
        Largest difference allowed between the phase currents at the connection, base load
        included [A] (VDE-AR-N 4100: 20 A).
    """

    name: str
    voltage_ln_v: float
    connection_limit_a: float
    chargers: tuple[Charger, ...]
    feeders: tuple[Feeder, ...] = ()
    transformer_kw: float | None = None
    transformer_primary_ll_v: float | None = None
    max_unbalance_a: float | None = None

    def connector_ids(self) -> list[str]:
        return [cid for ch in self.chargers for cid in ch.connector_ids()]

    @property
    def phase_limit_a(self) -> float:
        """The per-phase limit at the connection: the lower of the declared connection limit
        and the transformer's secondary rating [A]."""
        if self.transformer_kw is None:
            return self.connection_limit_a
        return min(self.connection_limit_a, self.transformer_kw * 1000.0 / (N_PHASES * self.voltage_ln_v))

    @property
    def primary_limit_a(self) -> float:
        """Per-line current rating of the transformer's delta primary [A] (inf without one)."""
        if self.transformer_kw is None or self.transformer_primary_ll_v is None:
            return math.inf
        return self.transformer_kw * 1000.0 / (N_PHASES * self.transformer_primary_ll_v / math.sqrt(3.0))
