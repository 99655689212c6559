"""Reports on finished runs: self-contained HTML pages with plotly figures."""

from evflex.report.html import comparison_table, write_comparison_report, write_report

__all__ = ["comparison_table", "write_comparison_report", "write_report"]
