"""Neutrino sources: reactor, pion decay at rest, binned and tabulated fluxes."""

from cevnsjax.sources.base import CompositeSource, ContinuousComponent, LineComponent, ScaledSource, Source, flavour_index
from cevnsjax.sources.binned import BinnedFlux
from cevnsjax.sources.pion_dar import PionDAR

__all__ = ["Source", "CompositeSource", "ScaledSource", "ContinuousComponent", "LineComponent", "flavour_index",
           "BinnedFlux", "PionDAR"]
from cevnsjax.sources.reactor import Reactor
from cevnsjax.sources.tabulated import TabulatedFlux, read_two_column

__all__ += ["Reactor", "TabulatedFlux", "read_two_column"]
