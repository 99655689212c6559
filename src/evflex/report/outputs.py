"""A run's output folder: its data files and its HTML report; and the folder of a
comparison of strategies (one sub-folder per strategy, the comparison table and page, and
one copy of plotly.js that every page of the folder loads).

Imports nothing heavy until something is written, so :data:`OUTPUT_FILES` is cheap to read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evflex.sim.results import SimulationResult

#: The plotly.js file shared by the pages of a comparison folder.
PLOTLYJS_FILE = "plotly.min.js"
#: Every file :func:`write_outputs` and :func:`write_comparison_outputs` write at the top
#: of their folder (a comparison also writes one sub-folder per strategy).
OUTPUT_FILES = ("kpis.json", "timeseries.parquet", "sessions.csv", "report.html", "comparison.csv", PLOTLYJS_FILE)


def write_outputs(
    result: SimulationResult, out_dir: str | Path, report: bool = True, *, plotlyjs_src: str | None = None
) -> Path:
    """Write ``kpis.json``, ``timeseries.parquet``, ``sessions.csv`` and (with ``report``)
    ``report.html`` into ``out_dir``; returns it.

    The report is a single offline file with plotly.js inlined, unless ``plotlyjs_src`` (a
    URL relative to the report, e.g. ``"../plotly.min.js"``) names a copy it loads instead.
    """
    out = result.write(out_dir)
    if report:
        from evflex.report.html import write_report

        write_report(result, out / "report.html", plotlyjs_src=plotlyjs_src)
    return out


def write_comparison_outputs(results: Sequence[SimulationResult], out_dir: str | Path, report: bool = True) -> Path:
    """Write runs of different strategies on one scenario into ``out_dir``; returns it.

    Each run goes to ``<strategy>/`` (as :func:`write_outputs`), their KPIs side by side to
    ``comparison.csv``; with ``report`` also the comparison page ``report.html`` and one
    ``plotly.min.js`` that it and every ``<strategy>/report.html`` load by relative path
    (the folder works offline, and moved as a whole).
    """
    from evflex.report.html import comparison_table, write_comparison_report, write_plotlyjs

    results = list(results)
    names = [r.strategy.value for r in results]
    if not results or len(set(names)) != len(names):
        raise ValueError(f"write_comparison_outputs needs runs of distinct strategies, got {names}")
    out = Path(out_dir)
    for r in results:
        write_outputs(r, out / r.strategy.value, report=report, plotlyjs_src=f"../{PLOTLYJS_FILE}")
    comparison_table(results).to_csv(out / "comparison.csv")
    if report:
        write_plotlyjs(out / PLOTLYJS_FILE)
        write_comparison_report(results, out / "report.html", plotlyjs_src=PLOTLYJS_FILE)
    return out
