"""Neutrino sources: reactor, pion decay at rest, binned and tabulated fluxes."""

from ._base import CompositeSource, ContinuousComponent, LineComponent, ScaledSource, Source, flavour_index
from .binned import BinnedFlux
from .pion_dar import PionDAR

__all__ = ["Source", "CompositeSource", "ScaledSource", "ContinuousComponent", "LineComponent", "flavour_index",
           "BinnedFlux", "PionDAR"]
from .reactor import Reactor
from .tabulated import TabulatedFlux, read_two_column

__all__ += ["Reactor", "TabulatedFlux", "read_two_column"]
