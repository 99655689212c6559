"""Reports on finished runs: self-contained HTML pages with plotly figures, and the output
folder of a run."""

from evflex.report.html import comparison_table, write_comparison_report, write_report
from evflex.report.outputs import write_outputs

__all__ = ["comparison_table", "write_comparison_report", "write_outputs", "write_report"]
