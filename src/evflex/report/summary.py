"""What a user must read first about a run, as plain text: the columns of the compact
summary table and the notices that explain a surprising result (a base load above the
limit, no EV able to charge, an unbalance beyond its limit).

Pure functions on KPI dicts, with nothing heavier than the standard library imported, so
the command line and both HTML reports share one wording. KPIs are read defensively: a key
a run does not have shows as ``-`` or is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import TypeGuard

#: Columns of the summary table, in order: (KPI key, header, format of its value).
SUMMARY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("strategy", "strategy", "{}"),
    ("energy_served_pct", "served %", "{:.2f}"),
    ("sessions_fully_served_pct", "full %", "{:.1f}"),
    ("unmet_energy_kwh", "unmet kWh", "{:.1f}"),
    ("max_phase_current_a", "max A", "{:.1f}"),
    ("limit_violation_steps", "over", "{}"),
    ("peak_site_kw", "peak kW", "{:.1f}"),
    ("switch_ons_per_session_mean", "starts", "{:.2f}"),
)
#: Columns added when some run has the KPI (a tariff gives costs; a carbon intensity, CO2).
OPTIONAL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("total_cost_eur", "cost EUR", "{:.2f}"),
    ("co2_kg", "CO2 kg", "{:.1f}"),
)
#: What a missing KPI shows in the summary table.
MISSING = "-"
#: KPIs that flag a breach of a limit when above zero (shown in red).
VIOLATION_KPIS: tuple[str, ...] = ("limit_violation_steps", "limit_violation_s", "max_overload_a")


def summary_title(kpis_list: Sequence[Mapping]) -> str:
    """Title line of the summary table: the (lowest) limit and what ``over`` counts."""
    limits = [k["grid_limit_a"] for k in kpis_list if isinstance(k.get("grid_limit_a"), (int, float))]
    limit = f"limit {min(limits):g} A per phase" if limits else "limit unknown"
    return f"{limit}; over = steps above a current limit"


def summary_columns(kpis_list: Sequence[Mapping]) -> tuple[tuple[str, str, str], ...]:
    """The summary table's columns for these runs: :data:`SUMMARY_COLUMNS`, then each of
    :data:`OPTIONAL_COLUMNS` that some run has."""
    extra = tuple(c for c in OPTIONAL_COLUMNS if any(k.get(c[0]) is not None for k in kpis_list))
    return SUMMARY_COLUMNS + extra


def summary_cells(kpis: Mapping, columns: Sequence[tuple[str, str, str]] = SUMMARY_COLUMNS) -> list[str]:
    """One row of the summary table as text, one cell per entry of ``columns``."""
    cells = []
    for key, _, fmt in columns:
        value = kpis.get(key)
        try:
            cells.append(MISSING if value is None else fmt.format(value))
        except (TypeError, ValueError):
            cells.append(str(value))
    return cells


def _is_number(value: object) -> TypeGuard[Real]:
    """A real number, numpy's included, but not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def is_violation(key: str, value: object) -> bool:
    """True when ``value`` of KPI ``key`` says a limit was breached."""
    return key in VIOLATION_KPIS and _is_number(value) and float(value) > 0


def _span(seconds: float) -> str:
    """``5400`` -> ``'1.5 h'``: a duration rounded for reading."""
    if seconds < 2 * 3600:
        return f"{seconds / 60:g} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def notices(kpis: Mapping) -> list[str]:
    """Plain-text notices a user must see for one run, most important first (may be empty).

    - ``base_load_over_limit_steps > 0``: the base load alone was above the connection
      limit, so no controller could keep the site under it; a controller holds the EVs
      drawing on those phases at 0 A meanwhile.
    - ``no_ev_can_charge`` true: the limit leaves less than the minimum charging current at
      every step, which explains an energy served of zero under control.
    - ``unbalance_violation_steps > 0``: the phase currents at the connection were further
      apart than ``max_unbalance_a``. The controller holds the limit at its set-points and
      at the draws it foretells from the meters; how many of those steps an EV surprised it
      (``unbalance_violation_surprise_steps``: took less than a newly offered set-point, or
      stopped on its own) is said with it.

    The first two do not depend on the strategy, so a comparison says each once.
    """
    out = []
    steps = kpis.get("base_load_over_limit_steps")
    if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0:
        period_s = kpis.get("period_s")
        span = f" ({_span(steps * period_s)})" if isinstance(period_s, (int, float)) and period_s > 0 else ""
        out.append(
            f"the base load alone is above the limit on {steps:,} step{'s' if steps != 1 else ''}{span}: "
            "no controller can keep the site under the limit then; "
            "controlled strategies hold the EVs drawing on those phases at 0 A"
        )
    if kpis.get("no_ev_can_charge") is True:
        out.append(
            "no EV can charge within the limit: it leaves less than the minimum charging current at every step, "
            "so controlled strategies deliver nothing"
        )
    unb, cap, worst = (kpis.get(k) for k in ("unbalance_violation_steps", "max_unbalance_a", "phase_unbalance_max_a"))
    if _is_number(unb) and _is_number(cap) and _is_number(worst) and float(unb) > 0:
        n = round(float(unb))
        text = (
            f"the phase currents were more than max_unbalance_a = {float(cap):g} A apart on {n:,} "
            f"step{'s' if n != 1 else ''} (up to {float(worst):.1f} A)"
        )
        surprised = kpis.get("unbalance_violation_surprise_steps")
        if _is_number(surprised) and kpis.get("strategy") != "uncontrolled":  # it holds no limit to be surprised in
            m = round(float(surprised))
            text += (
                f", {m:,} of them in a step where an EV took less than a newly offered current or stopped on its own"
                " (no reading could tell beforehand)"
            )
        out.append(text)
    return out


def grouped_notices(kpis_list: Sequence[Mapping]) -> list[tuple[list[str] | None, str]]:
    """The notices of several runs, each once, with the strategies it concerns (None when
    it concerns every run)."""
    by_text: dict[str, list[str]] = {}
    for k in kpis_list:
        for text in notices(k):
            by_text.setdefault(text, []).append(str(k.get("strategy", "?")))
    return [(None if len(names) == len(kpis_list) else names, text) for text, names in by_text.items()]


def run_notices(kpis_list: Sequence[Mapping]) -> list[str]:
    """The notices of several runs as lines, each once: prefixed with the strategies it
    concerns unless it concerns every run."""
    return [text if names is None else f"{', '.join(names)}: {text}" for names, text in grouped_notices(kpis_list)]
