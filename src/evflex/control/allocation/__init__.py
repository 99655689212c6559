"""Real-time allocation: strategies that share a site's capacity among plugged-in EVs."""

from evflex.control.allocation.controller import AllocationController, ControllerParams, make_controller

__all__ = ["AllocationController", "ControllerParams", "make_controller"]
