"""The spec error type and the registry of data loaders named by ``[data] loader`` in a specification.

Kept apart from :mod:`cevnsjax.io.spec` so that the preset loaders (:mod:`cevnsjax.io.presets`) can
register themselves without importing the spec parser (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["SpecError", "DATA_LOADERS", "register_loader"]


class SpecError(ValueError):
    """An invalid experiment specification; the message names the key, the value and the fix."""


#: name -> callable(path: Path, spec: dict, experiment: Experiment, pending) -> Experiment (with data attached)
DATA_LOADERS: dict[str, Callable] = {}


def register_loader(name: str):
    """Decorator: register ``fn`` as the data loader called ``name``."""

    def deco(fn):
        DATA_LOADERS[name] = fn
        return fn

    return deco
