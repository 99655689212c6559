"""Reports on finished runs: HTML pages with plotly figures, the output folder of a run or
of a comparison, and the plain-text summary and notices shared with the command line.

Names are imported from their modules on first use, so ``evflex.report.summary`` and
``evflex.report.outputs`` are cheap to import (plotly, numpy and pandas load with
:mod:`evflex.report.html`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evflex.report.html import comparison_table, write_comparison_report, write_report
    from evflex.report.outputs import write_comparison_outputs, write_outputs

_HOMES = {
    "comparison_table": "evflex.report.html",
    "write_comparison_report": "evflex.report.html",
    "write_report": "evflex.report.html",
    "write_comparison_outputs": "evflex.report.outputs",
    "write_outputs": "evflex.report.outputs",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'evflex.report' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = ["comparison_table", "write_comparison_outputs", "write_comparison_report", "write_outputs", "write_report"]
