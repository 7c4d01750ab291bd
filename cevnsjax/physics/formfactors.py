"""Nuclear form factors F(q) as functions of the momentum transfer and an rms radius.

Each model is a small frozen strategy object: ``default_rms_fm(A)`` (host, numpy) gives its
standard radius and ``__call__(q_MeV, rms_fm)`` (JAX) the form factor. The radius enters through the
rms radius so that proton and neutron distributions can be given separately and a neutron radius
(or skin) can be fitted: ``F_p = ff(q, R_p)``, ``F_n = ff(q, R_n)``.

* :class:`Helm` -- Helm (1956) with the Lewin-Smith parameters (Astropart. Phys. 6, 87 (1996)):
  F = 3 j1(q R0)/(q R0) exp(-q^2 s^2/2), s = 0.9 fm, R0^2 = c^2 + 7/3 pi^2 a^2 - 5 s^2,
  c = 1.23 A^(1/3) - 0.60 fm, a = 0.52 fm; R_rms^2 = 3/5 R0^2 + 3 s^2.
* :class:`KleinNystrand` -- Klein & Nystrand, PRC 60, 014903 (1999): F = 3 j1(q R_A)/(q R_A) / (1 + a^2 q^2),
  R_A = 1.2 A^(1/3) fm, a = 0.7 fm; R_rms^2 = 3/5 R_A^2 + 6 a^2.
* :class:`SymmetrizedFermi` -- e.g. Cadeddu et al. PRL 120, 072501 (2018):
  F = 3/(qc[(qc)^2+(pi q a)^2]) [pi q a/sinh(pi q a)] [pi q a/tanh(pi q a) sin(qc) - qc cos(qc)],
  c = 1.23 A^(1/3) - 0.60 fm, a = 0.52 fm; R_rms^2 = 3/5 c^2 + 7/5 pi^2 a^2.

All of them are exactly 1 at q = 0, with finite values and gradients there (series below small
arguments, the double-``where`` pattern).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from cevnsjax.physics.constants import HBARC_MEV_FM

__all__ = ["FormFactor", "Helm", "KleinNystrand", "SymmetrizedFermi", "NoFormFactor", "spherical_j1_ratio"]


def spherical_j1_ratio(x):
    """3 j1(x)/x, exact to float precision for all x >= 0 (Taylor series below x = 0.5)."""
    small = x < 0.5
    xs = jnp.where(small, 1.0, x)
    exact = 3.0 * (jnp.sin(xs) - xs * jnp.cos(xs)) / xs**3
    x2 = jnp.where(small, x, 0.0) ** 2
    series = 1.0 - x2 / 10.0 + x2**2 / 280.0 - x2**3 / 15120.0 + x2**4 / 1330560.0
    return jnp.where(small, series, exact)


class FormFactor:
    """Base class: a form factor model (a static strategy; hashable)."""

    def default_rms_fm(self, A) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, q_MeV, rms_fm):  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class NoFormFactor(FormFactor):
    """F = 1 (point nucleus): for limits and tests."""

    def default_rms_fm(self, A):
        return np.full(np.shape(A), 1.0)

    def __call__(self, q_MeV, rms_fm):
        return jnp.ones_like(q_MeV * rms_fm)


@dataclass(frozen=True)
class Helm(FormFactor):
    """Helm form factor, Lewin-Smith parametrisation (s, a, c in fm)."""

    s: float = 0.9
    a: float = 0.52
    c0: float = 1.23
    c1: float = -0.60

    def r0_fm(self, A) -> np.ndarray:
        c = self.c0 * np.cbrt(np.asarray(A, float)) + self.c1
        return np.sqrt(c**2 + 7.0 / 3.0 * np.pi**2 * self.a**2 - 5.0 * self.s**2)

    def default_rms_fm(self, A):
        return np.sqrt(0.6 * self.r0_fm(A) ** 2 + 3.0 * self.s**2)

    def __call__(self, q_MeV, rms_fm):
        q = q_MeV / HBARC_MEV_FM  # fm^-1
        r0 = jnp.sqrt(jnp.maximum(5.0 / 3.0 * rms_fm**2 - 5.0 * self.s**2, 1e-6))
        return spherical_j1_ratio(q * r0) * jnp.exp(-0.5 * (q * self.s) ** 2)


@dataclass(frozen=True)
class KleinNystrand(FormFactor):
    """Klein-Nystrand form factor: hard sphere folded with a Yukawa of range a_k [fm]."""

    a_k: float = 0.7
    r_coeff: float = 1.2

    def r_a_fm(self, A) -> np.ndarray:
        return self.r_coeff * np.cbrt(np.asarray(A, float))

    def default_rms_fm(self, A):
        return np.sqrt(0.6 * self.r_a_fm(A) ** 2 + 6.0 * self.a_k**2)

    def __call__(self, q_MeV, rms_fm):
        q = q_MeV / HBARC_MEV_FM
        ra = jnp.sqrt(jnp.maximum(5.0 / 3.0 * (rms_fm**2 - 6.0 * self.a_k**2), 1e-6))
        return spherical_j1_ratio(q * ra) / (1.0 + (self.a_k * q) ** 2)


@dataclass(frozen=True)
class SymmetrizedFermi(FormFactor):
    """Symmetrized Fermi form factor with half-density radius c and diffuseness a [fm]."""

    a: float = 0.52
    c0: float = 1.23
    c1: float = -0.60

    def c_fm(self, A) -> np.ndarray:
        return self.c0 * np.cbrt(np.asarray(A, float)) + self.c1

    def default_rms_fm(self, A):
        return np.sqrt(0.6 * self.c_fm(A) ** 2 + 1.4 * np.pi**2 * self.a**2)

    def __call__(self, q_MeV, rms_fm):
        q = q_MeV / HBARC_MEV_FM
        a = self.a
        c2 = jnp.maximum(5.0 / 3.0 * (rms_fm**2 - 1.4 * np.pi**2 * a**2), 1e-6)
        c = jnp.sqrt(c2)
        # Series F = 1 - q^2 <r^2>/6 + q^4 <r^4>/120 - q^6 <r^6>/5040 for small q*R (cancellation above).
        small = q * rms_fm < 0.3
        qs = jnp.where(small, 1.0, q)
        x, y = qs * c, np.pi * qs * a
        exact = 3.0 / (x * (x**2 + y**2)) * (y / jnp.sinh(y)) * (y / jnp.tanh(y) * jnp.sin(x) - x * jnp.cos(x))
        pa2 = (np.pi * a) ** 2
        r2 = 0.6 * c2 + 1.4 * pa2
        r4 = 3.0 / 7.0 * c2**2 + 18.0 / 7.0 * pa2 * c2 + 31.0 / 7.0 * pa2**2
        r6 = 1.0 / 3.0 * c2**3 + 11.0 / 3.0 * pa2 * c2**2 + 239.0 / 15.0 * pa2**2 * c2 + 127.0 / 5.0 * pa2**3
        ql2 = jnp.where(small, q, 0.0) ** 2
        series = 1.0 - ql2 * r2 / 6.0 + ql2**2 * r4 / 120.0 - ql2**3 * r6 / 5040.0
        return jnp.where(small, series, exact)
