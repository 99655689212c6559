"""Exception hierarchy.

Bad input is reported as a :class:`ValidationError` carrying *every* problem found, each a
:class:`Problem` that renders as one line naming the file, the row or key, the field and the
offending value. Only entry points raise; parsers collect problems into lists.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import SupportsIndex


class EvflexError(Exception):
    """Base class of every error evflex raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem in a user's input.

    Renders as ``source:line: field='value': message`` (parts that are unknown are left out),
    e.g. ``sessions.csv:4: energy_kwh='-3': must be >= 0``.
    """

    source: str
    message: str
    line: int | None = None
    field: str | None = None
    value: object = None
    has_value: bool = False

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        parts = [where]
        if self.field is not None:
            parts.append(f"{self.field}={_show(self.value)}" if self.has_value else self.field)
        parts.append(self.message)
        return ": ".join(parts)


def problem(
    source: str, message: str, *, line: int | SupportsIndex | None = None, field: str | None = None, **kw
) -> Problem:
    """Build a :class:`Problem`; pass ``value=`` to show the offending value. ``line`` may be
    any integer (numpy's included)."""
    line = None if line is None else operator.index(line)
    if "value" in kw:
        return Problem(source, message, line, field, kw["value"], True)
    return Problem(source, message, line, field)


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


class ValidationError(EvflexError):
    """Bad input: one or more :class:`Problem` s, all reported at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SimulationWarning(UserWarning):
    """A run went through, but its result needs the user's attention (no EV could charge...)."""


class NoRoomWarning(SimulationWarning):
    """The limit leaves no EV its minimum current at any step: nothing can charge. (The
    command line says it once, as a notice after the run.)"""


class InvariantError(EvflexError):
    """A simulated run broke a physical or safety invariant: a bug, never bad input."""
