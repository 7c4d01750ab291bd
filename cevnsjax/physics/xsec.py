"""CEvNS cross sections: SM, NSI, light vector and scalar mediators, magnetic moment, charge radius.

Every cross section here factorises into E_R-dependent *coefficients* times three kinematic
*weights* of the neutrino energy (the kernel idea of ``DESIGN.md``):

    dsigma/dE_R = (G_F^2 M / pi) [ C_vec(E_R) w_vec(E_nu, E_R) + C_sca(E_R) w_sca(E_nu, E_R)
                                   + C_mag(E_R) w_mag(E_nu, E_R) ]

* w_vec = 1 - M E_R/(2 E^2) - E_R/E + E_R^2/(2 E^2)   ('full', dukecevns ``diffxscnvec``), or
  1 - M E_R/(2 E^2) ('standard');
* w_sca = M E_R / (2 E^2);
* w_mag = 1/E_R - 1/E + E_R/(4 E^2)  [MeV^-1].

C_vec = sum_beta |Q_{beta alpha}(q)|^2 in convention A (REFERENCE §0, §7): the SM weak charge with
proton and neutron form factors, NSI (Coloma et al. 1708.02899), U(1)' Z' exchange and charge-radius
shifts; C_sca = (Q_phi/G_F)^2 / (2 (|q|^2 + m_phi^2)^2) (Cerdeno et al. 1604.01025; the scalar adds
incoherently); C_mag = (pi alpha mu_nu / (m_e G_F))^2 Z^2 F_p^2 / M (Vogel & Engel 1989).
|q|^2 = 2 M E_R + E_R^2 (exact). All energies in MeV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from cevnsjax.physics.constants import ALPHA, CHARGE_RADIUS_COEFF, G_F, HBARC2_MEV2_CM2, M_ELECTRON, M_NEUTRON, M_PROTON
from cevnsjax.physics.couplings import CHARGE_RADIUS_CORRECTIONS, COUPLING_PRESETS, UNIVERSAL, ZPrimeCharges
from cevnsjax.physics.formfactors import FormFactor, Helm
from cevnsjax.physics.params import PhysicsParams

__all__ = [
    "CrossSectionModel", "E_R_max", "E_nu_min", "momentum_transfer2", "kinematic_weights",
    "coefficients", "differential_cross_section", "total_cross_section", "weak_charge",
]

# Scalar charges per nucleon in units of g_nu g_q: 14 A + 1.1 Z = 14 N + 15.1 Z (heavy quarks and
# gluons included; bradkav/CEvNS), or c_{p,n} = m_{p,n} sum_q f_Tq/m_q with light quarks only (pyCEvNS).
_F_TQ = {"p": (0.0208, 0.0411), "n": (0.0189, 0.0451)}
_M_UD = (2.2, 4.7)
SCALAR_CHARGES = {
    "14N+15.1Z": (15.1, 14.0),
    "nucleon": (
        M_PROTON * (_F_TQ["p"][0] / _M_UD[0] + _F_TQ["p"][1] / _M_UD[1]),
        M_NEUTRON * (_F_TQ["n"][0] / _M_UD[0] + _F_TQ["n"][1] / _M_UD[1]),
    ),
}
_MAG_COEFF = math.pi * ALPHA * 1e-10 / (M_ELECTRON * G_F)  # [MeV] per 1e-10 mu_B
_R2_UNIT_MEV2 = 1e-32 / HBARC2_MEV2_CM2  # 1e-32 cm^2 in MeV^-2


@dataclass(frozen=True)
class CrossSectionModel:
    """Static physics choices (hashable; part of the compiled program, not of the parameters).

    form_factor: :class:`~cevnsjax.physics.formfactors.FormFactor` for protons and neutrons (Helm LS).
    couplings: 'tree' (1/2 - 2 s_W^2, -1/2) or a key of ``COUPLING_PRESETS`` or a coupling object.
    charge_radius_correction: None or 'erler' / 'giunti' / 'giunti_legacy' (added to g_p^V).
    kinematics: 'full' (with the -E_R/E + E_R^2/2E^2 terms) or 'standard' (1 - M E_R / 2E^2).
    zprime_charges: U(1)' charges (UNIVERSAL, B_MINUS_L, B_MINUS_LE_3LMU_PLUS_LTAU or custom).
    scalar_charges: '14N+15.1Z' or 'nucleon'.
    proton_rms_fm, neutron_rms_fm: optional {isotope name or element: rms radius [fm]} overriding
        the form factor's default radius.
    """

    form_factor: FormFactor = field(default_factory=Helm)
    couplings: object = "tree"
    charge_radius_correction: str | None = None
    kinematics: str = "full"
    zprime_charges: ZPrimeCharges = UNIVERSAL
    scalar_charges: str = "14N+15.1Z"
    proton_rms_fm: tuple = ()
    neutron_rms_fm: tuple = ()

    def __post_init__(self):
        if isinstance(self.couplings, str) and self.couplings not in COUPLING_PRESETS:
            raise ValueError(
                f"couplings={self.couplings!r} is not known; use one of {sorted(COUPLING_PRESETS)} "
                "or a coupling object such as FixedCouplings(gp, gn)"
            )
        if self.charge_radius_correction not in (None, *CHARGE_RADIUS_CORRECTIONS):
            raise ValueError(
                f"charge_radius_correction={self.charge_radius_correction!r}; use None or one of "
                f"{sorted(CHARGE_RADIUS_CORRECTIONS)}"
            )
        if self.kinematics not in ("full", "standard"):
            raise ValueError(f"kinematics={self.kinematics!r}; use 'full' or 'standard'")
        if self.scalar_charges not in SCALAR_CHARGES:
            raise ValueError(f"scalar_charges={self.scalar_charges!r}; use one of {sorted(SCALAR_CHARGES)}")
        # dicts are not hashable: store radius overrides as sorted tuples of pairs
        for name in ("proton_rms_fm", "neutron_rms_fm"):
            v = getattr(self, name)
            if isinstance(v, dict):
                object.__setattr__(self, name, tuple(sorted(v.items())))

    @property
    def coupling_scheme(self):
        return COUPLING_PRESETS[self.couplings] if isinstance(self.couplings, str) else self.couplings

    def rms_radii_fm(self, names, elements, A) -> tuple[np.ndarray, np.ndarray]:
        """Default (proton, neutron) rms radii [fm] for isotopes, with the overrides applied."""
        base = np.asarray(self.form_factor.default_rms_fm(np.asarray(A, float)), float)
        out = []
        for overrides in (dict(self.proton_rms_fm), dict(self.neutron_rms_fm)):
            r = base.copy()
            for i, (n, el) in enumerate(zip(names, elements)):
                if n in overrides:
                    r[i] = overrides[n]
                elif el in overrides:
                    r[i] = overrides[el]
            out.append(r)
        return out[0], out[1]


def E_R_max(E_nu, M):
    """Largest recoil energy 2 E^2 / (M + 2 E) [MeV]."""
    return 2.0 * E_nu**2 / (M + 2.0 * E_nu)


def E_nu_min(E_R, M, xp=jnp):
    """Smallest neutrino energy giving recoil E_R: (E_R + sqrt(E_R^2 + 2 M E_R)) / 2 [MeV]."""
    return 0.5 * (E_R + xp.sqrt(E_R**2 + 2.0 * M * E_R))


def momentum_transfer2(E_R, M):
    """|q|^2 = 2 M E_R + E_R^2 [MeV^2]."""
    return 2.0 * M * E_R + E_R**2


def kinematic_weights(E_nu, E_R, M, kinematics="full", xp=jnp):
    """(w_vec, w_sca, w_mag) at (E_nu, E_R) for nucleus mass M; zero where E_nu < E_nu_min(E_R).

    Works with numpy (``xp=np``; used to build kernels) and jax.numpy.
    """
    inv = 1.0 / E_nu
    w_vec = 1.0 - 0.5 * M * E_R * inv**2
    if kinematics == "full":
        w_vec = w_vec - E_R * inv + 0.5 * (E_R * inv) ** 2
    w_sca = 0.5 * M * E_R * inv**2
    w_mag = 1.0 / E_R - inv + 0.25 * E_R * inv**2
    allowed = E_nu >= E_nu_min(E_R, M, xp=xp)
    return tuple(xp.where(allowed, xp.maximum(w, 0.0), 0.0) for w in (w_vec, w_sca, w_mag))


def coefficients(params: PhysicsParams, model: CrossSectionModel, E_R, Z, N, M, rp0_fm, rn0_fm):
    """Coefficients (C_vec, C_sca, C_mag) of the three kinematic weights.

    ``E_R``, ``Z``, ``N``, ``M``, radii broadcast together (shape S). Returns
    C_vec: (2, 3, *S) [neutrino/antineutrino, flavour e/mu/tau], C_sca: S, C_mag: (3, *S) [MeV],
    all in units of the prefactor G_F^2 M / pi.
    """
    dt = jnp.result_type(E_R, M)
    q2 = momentum_transfer2(E_R, M)
    q = jnp.sqrt(q2)
    ff = model.form_factor
    Fp = ff(q, rp0_fm + params.delta_rp_fm)
    Fn = ff(q, rn0_fm + params.delta_rn_fm)
    ZF, NF = Z * Fp, N * Fn

    gp, gn = model.coupling_scheme(jnp.asarray(params.sin2_theta_w))
    gp = gp + params.delta_gp_v
    gn = gn + params.delta_gn_v
    # flavour-dependent shifts of g_p^V: SM charge-radius correction and extra <r^2>
    r2 = jnp.asarray(params.charge_radius2_1e32_cm2) * _R2_UNIT_MEV2
    dgp = -CHARGE_RADIUS_COEFF * r2  # (3,)
    dgp_nu, dgp_nubar = dgp, dgp
    if model.charge_radius_correction is not None:
        corr = jnp.asarray(CHARGE_RADIUS_CORRECTIONS[model.charge_radius_correction], dt)
        dgp_nu = dgp_nu + corr
        sign = -1.0 if model.charge_radius_correction == "giunti_legacy" else 1.0
        dgp_nubar = dgp_nubar + sign * corr
    dgp2 = jnp.stack([dgp_nu, dgp_nubar])  # (2, 3)

    eu = jnp.asarray(params.eps_u)
    ed = jnp.asarray(params.eps_d)
    nsi_p = 2.0 * eu + ed  # (3 beta, 3 alpha)
    nsi_n = eu + 2.0 * ed

    # light vector mediator: per-flavour shift of the weak charge
    qp, qn = model.zprime_charges.nucleon_charges()
    g2 = params.g_zprime**2
    prop = 1.0 / (math.sqrt(2.0) * G_F * (q2 + params.m_zprime_MeV**2))
    zp = g2 * prop * (qp * ZF + qn * NF)  # S
    qnu = jnp.asarray(model.zprime_charges.q_nu, dt)  # (3,)

    ex = (...,) + (None,) * jnp.ndim(ZF)
    # diagonal weak charge Q_aa: (2, 3, *S)
    diag_p = gp + jnp.diagonal(nsi_p)[None, :] + dgp2  # (2, 3)
    diag_n = gn + jnp.diagonal(nsi_n)  # (3,)
    Q_diag = diag_p[ex] * ZF + jnp.broadcast_to(diag_n, (2, 3))[ex] * NF + qnu[None, :][ex] * zp
    # flavour-changing NSI: sum over beta != alpha of |(2eu+ed) Z F_p + (eu+2ed) N F_n|^2
    # = ZF^2 sum_b a_ba^2 + 2 ZF NF sum_b a_ba b_ba + NF^2 sum_b b_ba^2 (a, b: off-diagonal parts)
    off = 1.0 - jnp.eye(3, dtype=dt)
    a, b = nsi_p * off, nsi_n * off
    C_off = (jnp.sum(a * a, 0)[ex] * ZF**2 + 2.0 * jnp.sum(a * b, 0)[ex] * (ZF * NF)
             + jnp.sum(b * b, 0)[ex] * NF**2)  # (3 alpha, *S)
    C_vec = Q_diag**2 + C_off[None]

    cp, cn = SCALAR_CHARGES[model.scalar_charges]
    q_phi_over_gf = params.g_scalar**2 / G_F * (cp * ZF + cn * NF)  # [MeV^2]
    C_sca = q_phi_over_gf**2 / (2.0 * (q2 + params.m_scalar_MeV**2) ** 2)

    mu = jnp.asarray(params.magnetic_moment_1e10_muB) * _MAG_COEFF  # (3,) [MeV]
    C_mag = mu[ex] ** 2 * (ZF**2 / M)
    return C_vec, C_sca, C_mag


def _prefactor_cm2(M):
    """G_F^2 M / pi in cm^2/MeV (host float64)."""
    return G_F**2 * M / math.pi * HBARC2_MEV2_CM2


def _isotope_arrays(isotope, model):
    from cevnsjax.physics.nuclei import ISOTOPES

    if isinstance(isotope, str):
        if isotope not in ISOTOPES:
            from cevnsjax.physics.nuclei import unknown_name_error

            raise unknown_name_error("isotope", isotope, ISOTOPES)
        isotope = ISOTOPES[isotope]
    rp, rn = model.rms_radii_fm([isotope.name], [isotope.element], [isotope.A])
    return float(isotope.Z), float(isotope.N), isotope.mass_MeV, float(rp[0]), float(rn[0])


def differential_cross_section(params, E_nu, E_R, isotope, flavour=0, antineutrino=False,
                               model: CrossSectionModel = CrossSectionModel()):
    """dsigma/dE_R [cm^2/MeV] for one isotope (name like 'Ge72' or an Isotope), E_nu, E_R in MeV."""
    Z, N, M, rp, rn = _isotope_arrays(isotope, model)
    C_vec, C_sca, C_mag = coefficients(params, model, E_R, Z, N, M, rp, rn)
    w_vec, w_sca, w_mag = kinematic_weights(E_nu, E_R, M, model.kinematics)
    a = 1 if antineutrino else 0
    total = C_vec[a, flavour] * w_vec + C_sca * w_sca + C_mag[flavour] * w_mag
    return _prefactor_cm2(M) * total


def total_cross_section(params, E_nu, isotope, flavour=0, antineutrino=False,
                        model: CrossSectionModel = CrossSectionModel(), n_nodes=64):
    """sigma(E_nu) = int_0^{E_R,max} dsigma/dE_R dE_R [cm^2] by Gauss-Legendre in E_R.

    The magnetic-moment part diverges logarithmically at E_R -> 0 and is excluded from this
    integral unless a positive lower E_R is wanted (use :func:`differential_cross_section`).
    """
    Z, N, M, rp, rn = _isotope_arrays(isotope, model)
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    E_nu = jnp.asarray(E_nu)
    er_max = E_R_max(E_nu, M)[..., None]
    E_R = 0.5 * er_max * (x + 1.0)
    p0 = params.replace(magnetic_moment_1e10_muB=jnp.zeros(3))
    C_vec, C_sca, _ = coefficients(p0, model, E_R, Z, N, M, rp, rn)
    w_vec, w_sca, _ = kinematic_weights(E_nu[..., None], E_R, M, model.kinematics)
    a = 1 if antineutrino else 0
    integrand = C_vec[a, flavour] * w_vec + C_sca * w_sca
    return _prefactor_cm2(M) * 0.5 * er_max[..., 0] * jnp.sum(w * integrand, axis=-1)


def weak_charge(params, Z, N, model: CrossSectionModel = CrossSectionModel(), convention="A"):
    """SM weak charge at q = 0: convention 'A' Z g_p + N g_n, or 'B' N - (1 - 4 s^2) Z = -2 x (A)."""
    gp, gn = model.coupling_scheme(jnp.asarray(params.sin2_theta_w))
    qa = Z * (gp + params.delta_gp_v) + N * (gn + params.delta_gn_v)
    if convention == "A":
        return qa
    if convention == "B":
        return -2.0 * qa
    raise ValueError(f"convention={convention!r}; use 'A' (Z g_p + N g_n) or 'B' (N - (1-4s^2) Z)")
