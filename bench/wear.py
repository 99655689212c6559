"""Contactor wear: switch-ons per session and energy served per strategy on a congested
quarter (the README's table, column "after"): ``python bench/wear.py [days]``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import evflex  # noqa: E402
from sites import congested_year_scenario  # noqa: E402


def main() -> None:
    days = int(sys.argv[1]) if len(sys.argv) > 1 else 91
    sc = congested_year_scenario(Path(__file__).parent.parent, days=days)
    print(f"congested site, {days} days, {len(sc.sessions)} sessions")
    for strategy in ("equal", "proportional", "edf", "llf"):
        k = evflex.simulate(sc, strategy).kpis
        starts = f"starts/session {k['switch_ons_per_session_mean']:5.2f} (max {k['switch_ons_per_session_max']})"
        served = f"served {k['energy_served_pct']:6.2f} %  over {k['limit_violation_steps']}"
        print(f"{strategy:<13} {starts}  {served}")


if __name__ == "__main__":
    main()
