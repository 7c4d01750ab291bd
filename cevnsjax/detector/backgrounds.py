"""Background models in the observable (keVee, keVnr or PE): parametric shapes and templates.

Each model is a frozen dataclass registered as a JAX pytree whose traced fields are fit parameters,
so a NumPyro model or a scan builds it from sampled values. ``counts(edges, exposure_kg_day)``
returns expected counts per observable bin:

* :class:`Flat` -- ``rate`` counts / (unit kg day), e.g. counts/(keV kg day) ("ckkd", NUCLEUS);
* :class:`Exponential` -- ``rate0`` exp(-E/``decay``) counts / (unit kg day);
* :class:`GaussianLine` -- a line of ``amplitude`` counts / (kg day) at ``centre`` with width
  ``sigma`` (e.g. the 71Ge electron-capture L1, L2 and M lines in Dresden-II);
* :class:`Template` -- ``scale`` x fixed counts per bin for the full exposure (beam-off spectra,
  beam-related neutrons, steady-state from anti-coincidence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

__all__ = ["Background", "Flat", "Exponential", "GaussianLine", "Template", "total_background"]


def _static(**kw):
    return field(metadata=dict(static=True), **kw)


class Background:
    """Base class; ``name`` identifies the component (parameters are named ``<name>.<field>``)."""

    name: str

    def counts(self, edges, exposure_kg_day):  # pragma: no cover - abstract
        raise NotImplementedError


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Flat(Background):
    """Constant rate [counts / (unit kg day)]."""

    rate: float
    name: str = _static(default="flat")

    def __post_init__(self):  # Python numbers only: jit and grad rebuild the pytree with tracers
        r = self.rate
        if isinstance(r, (int, float)) and not isinstance(r, bool) and not (math.isfinite(r) and r >= 0):
            raise ValueError(f"Flat background {self.name!r}: rate={r!r} must be finite and >= 0 "
                             "[counts / (unit kg day)]")

    def counts(self, edges, exposure_kg_day):
        e = jnp.asarray(edges)
        return self.rate * (e[1:] - e[:-1]) * exposure_kg_day


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Exponential(Background):
    """rate0 exp(-E/decay) [counts / (unit kg day)], integrated exactly over each bin."""

    rate0: float
    decay: float
    name: str = _static(default="exponential")

    def counts(self, edges, exposure_kg_day):
        e = jnp.asarray(edges)
        d = jnp.maximum(self.decay, 1e-12)
        return self.rate0 * d * (jnp.exp(-e[:-1] / d) - jnp.exp(-e[1:] / d)) * exposure_kg_day


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class GaussianLine(Background):
    """A Gaussian line with ``amplitude`` counts/(kg day) in total, mean ``centre``, width ``sigma``."""

    amplitude: float
    centre: float
    sigma: float
    name: str = _static(default="line")

    def counts(self, edges, exposure_kg_day):
        e = jnp.asarray(edges)
        s = jnp.maximum(self.sigma, 1e-12)
        cdf = ndtr((e - self.centre) / s)
        return self.amplitude * (cdf[1:] - cdf[:-1]) * exposure_kg_day


@jax.tree_util.register_dataclass
@dataclass(frozen=True, eq=False)
class Template(Background):
    """``scale`` x ``template`` (counts per bin for the whole exposure; any observable shape).

    The template is an array leaf of the pytree (not static metadata: arrays have no simple
    equality), never a fit parameter (:mod:`cevnsjax.experiment` exposes scalar fields only).
    """

    scale: float
    template: np.ndarray
    name: str = _static(default="template")

    def __post_init__(self):
        t = self.template
        if isinstance(t, np.ndarray) or isinstance(t, (list, tuple)):
            t = np.asarray(t, float)
            if not np.all(np.isfinite(t)) or np.any(t < 0):
                raise ValueError(f"background template {self.name!r} must be finite and >= 0 counts per bin")
            object.__setattr__(self, "template", t)

    def counts(self, edges, exposure_kg_day):
        return self.scale * jnp.asarray(self.template)


def total_background(backgrounds, edges, exposure_kg_day, shape):
    """Sum of all background counts; every component must give the observable's shape."""
    total = jnp.zeros(shape)
    for b in backgrounds:
        c = jnp.asarray(b.counts(edges, exposure_kg_day))
        if c.shape != tuple(shape):
            raise ValueError(
                f"background {b.name!r} gives counts of shape {c.shape}, the observable has shape {tuple(shape)}; "
                "use a Template with counts per (energy, time) bin for two-dimensional observables"
            )
        total = total + c
    return total
