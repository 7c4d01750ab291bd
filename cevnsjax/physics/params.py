"""Physics parameters: one immutable pytree, every field differentiable.

``PhysicsParams()`` is the Standard Model with the low-energy weak mixing angle. New-physics fields
are zero by default, so ``PhysicsParams(g_zprime=1e-5, m_zprime_MeV=10.)`` switches on a light Z'.
Units are in the field names where they are not the internal ones (MeV). Static choices (form
factor, coupling scheme, U(1)' charges, kinematics) live in :class:`cevnsjax.physics.xsec.CrossSectionModel`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from cevnsjax.names import check_known
from cevnsjax.physics.constants import SIN2_THETA_W_LOW_ENERGY

__all__ = ["PhysicsParams"]


def _zeros(*shape):
    return field(default_factory=lambda: np.zeros(shape))


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PhysicsParams:
    """Parameters of the neutrino-nucleus cross section (convention A: Q_W = Z g_p^V + N g_n^V).

    Attributes:
        sin2_theta_w: weak mixing angle (MSbar, Q -> 0); default 0.23857.
        delta_gp_v, delta_gn_v: additive shifts of the nucleon vector couplings g_p^V, g_n^V.
        eps_u, eps_d: vector NSI matrices eps^{qV}_{beta alpha} (3x3, flavours e, mu, tau; real).
        g_zprime, m_zprime_MeV: light vector mediator, g_nu g_q = g_zprime^2 x U(1)' charges.
        g_scalar, m_scalar_MeV: light scalar mediator, g_nu g_q = g_scalar^2.
        magnetic_moment_1e10_muB: effective neutrino magnetic moment per flavour [1e-10 mu_B].
        charge_radius2_1e32_cm2: additional neutrino charge radius <r^2> per flavour [1e-32 cm^2]
            (SM value for nu_e is about -0.83; enters as a shift of g_p^V).
        delta_rp_fm, delta_rn_fm: shifts of the proton and neutron rms radii from the form-factor
            model's defaults [fm] (a fitted neutron skin is delta_rn_fm - delta_rp_fm).
    """

    sin2_theta_w: jax.Array | float = SIN2_THETA_W_LOW_ENERGY
    delta_gp_v: jax.Array | float = 0.0
    delta_gn_v: jax.Array | float = 0.0
    eps_u: jax.Array = _zeros(3, 3)
    eps_d: jax.Array = _zeros(3, 3)
    g_zprime: jax.Array | float = 0.0
    m_zprime_MeV: jax.Array | float = 1.0e3
    g_scalar: jax.Array | float = 0.0
    m_scalar_MeV: jax.Array | float = 1.0e3
    magnetic_moment_1e10_muB: jax.Array = _zeros(3)
    charge_radius2_1e32_cm2: jax.Array = _zeros(3)
    delta_rp_fm: jax.Array | float = 0.0
    delta_rn_fm: jax.Array | float = 0.0

    def replace(self, **changes) -> PhysicsParams:
        """A copy with some fields changed; unknown names raise with the closest valid name."""
        check_known(list(changes), field_names(), "parameter")
        return dataclasses.replace(self, **changes)

    def astype(self, dtype) -> PhysicsParams:
        """All fields as JAX arrays of ``dtype`` (e.g. ``jnp.float32``)."""
        return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype=dtype), self)


def field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(PhysicsParams))
