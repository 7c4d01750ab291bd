"""Neutrino sources: reactor, pion decay at rest, binned and tabulated fluxes."""

from ._base import CompositeSource, ContinuousComponent, LineComponent, ScaledSource, Source, flavour_index
from .binned import BinnedFlux
from .pion_dar import PionDAR

__all__ = ["Source", "CompositeSource", "ScaledSource", "ContinuousComponent", "LineComponent", "flavour_index",
           "BinnedFlux", "PionDAR"]

try:  # modules written alongside; re-exported when present
    from .reactor import Reactor  # noqa: F401
    from .tabulated import TabulatedFlux, read_two_column  # noqa: F401

    __all__ += ["Reactor", "TabulatedFlux", "read_two_column"]
except ImportError:  # pragma: no cover
    pass
