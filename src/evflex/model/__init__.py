"""Domain model: frozen, array-backed descriptions of sites, chargers and sessions."""

from evflex.model.series import StepSeries
from evflex.model.sessions import SessionTable
from evflex.model.site import Charger, ChargerResponse, Feeder, Site
from evflex.model.topology import Topology, compile_topology

__all__ = ["Charger", "ChargerResponse", "Feeder", "SessionTable", "Site", "StepSeries", "Topology", "compile_topology"]
