"""Units, the sign convention and the conversions between current and power.

Sign convention (stated once, used everywhere): power and current drawn **from** the grid
are positive; power fed **into** the grid (PV export, V2G discharge) is negative.

Electrical quantities are per phase, phase-to-neutral, at unity power factor: a connector
drawing ``current_a`` on ``phases`` phases of a ``voltage_ln_v`` network takes
``current_a * phases * voltage_ln_v / 1000`` kW.
"""

from __future__ import annotations

SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0
W_PER_KW = 1000.0
J_PER_KWH = 3.6e6
N_PHASES = 3
PHASE_NAMES = ("L1", "L2", "L3")

#: IEC 61851-1 control pilot: below this the EV does not charge [A].
IEC61851_MIN_CURRENT_A = 6.0

#: Numerical tolerance for comparisons of currents [A] and energies [kWh].
CURRENT_TOL_A = 1e-6
ENERGY_TOL_KWH = 1e-6
