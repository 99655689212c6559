"""The cloud side: charging plans over a horizon (issue 6). :mod:`.lp` builds and solves the
linear programme; the planner strategies that call it come next."""

from evflex.control.scheduling.lp import ChargingLP, Plan, solve_plan

__all__ = ["ChargingLP", "Plan", "solve_plan"]
