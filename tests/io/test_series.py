"""Time-series CSV files (base load, PV, connection limit): columns, units, phases,
announcement times, and one line per problem naming the file line."""

import numpy as np
import pytest

from evflex.errors import ValidationError
from evflex.io.series import read_series

V = 230.0


def write(tmp_path, text, name="series.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def problems(tmp_path, text, kind="base_load", name="series.csv"):
    with pytest.raises(ValidationError) as exc:
        read_series(write(tmp_path, text, name), kind, V)
    return [str(p) for p in exc.value.problems]


def test_problems_name_file_lines_in_order_after_blank_lines(tmp_path):
    text = "timestamp,limit_a\n\n2026-03-02T00:00:00Z,x\n2026-03-02T00:15:00Z,-3\n\n2026-03-02T00:10:00Z,20\n"
    assert problems(tmp_path, text, "limit", "limit.csv") == [
        "limit.csv:3: limit_a='x': not a number",
        "limit.csv:4: limit_a='-3': must be > 0",
        "limit.csv:6: timestamp='2026-03-02T00:10:00Z': timestamps must increase",
    ]


def test_semicolons_are_one_problem(tmp_path):
    assert problems(tmp_path, "timestamp;power_kw\n2026-03-02T00:00:00Z;3,5\n", "pv", "pv.csv") == [
        "pv.csv: fields are separated by ';', not ','; save it as comma-separated"
    ]


def test_total_power_is_spread_over_the_phases(tmp_path):
    s = read_series(write(tmp_path, "timestamp,power_kw\n2026-03-02T00:00:00Z,6.9\n"), "base_load", V)
    assert np.allclose(s.values, 10.0)
