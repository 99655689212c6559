"""A run's output folder: its data files and its HTML report."""

from __future__ import annotations

from pathlib import Path

from evflex.report.html import write_report
from evflex.sim.results import SimulationResult


def write_outputs(result: SimulationResult, out_dir: str | Path, report: bool = True) -> Path:
    """Write ``kpis.json``, ``timeseries.parquet``, ``sessions.csv`` and (with ``report``)
    ``report.html`` into ``out_dir``; returns it."""
    out = result.write(out_dir)
    if report:
        write_report(result, out / "report.html")
    return out
