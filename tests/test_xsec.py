"""Cross sections: analytic limits, conventions, new physics limits, published benchmarks, gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from reference import dsigma_sm

from cevnsjax.physics.constants import ALPHA, G_F, HBARC2_MEV2_CM2, M_ELECTRON
from cevnsjax.physics.couplings import (
    B_MINUS_L,
    B_MINUS_LE_3LMU_PLUS_LTAU,
    CHARGE_RADIUS_CORRECTIONS,
    COUPLING_PRESETS,
    PDGRadiative,
)
from cevnsjax.physics.formfactors import Helm, NoFormFactor
from cevnsjax.physics.nuclei import ISOTOPES
from cevnsjax.physics.params import PhysicsParams
from cevnsjax.physics.xsec import (
    CrossSectionModel,
    E_nu_min,
    E_R_max,
    differential_cross_section,
    total_cross_section,
    weak_charge,
)

P = PhysicsParams()
NOFF_STD = CrossSectionModel(form_factor=NoFormFactor(), kinematics="standard")


@pytest.mark.parametrize("iso", ["Ge72", "Cs133", "Ar40", "Na23"])
@pytest.mark.parametrize("E", [1.0, 10.0, 50.0])
def test_total_cross_section_no_form_factor_analytic(iso, E):
    # Without form factor and with the standard kinematic factor the integral is exact:
    # sigma = G_F^2 Q_W^2 E^2/pi * (1 - (2E/(M+2E))^2); Gauss-Legendre of a quadratic: rtol 1e-12.
    # Its leading order G_F^2 Q_W^2 E^2 / pi (REFERENCE §9) holds to (2E/M)^2.
    I = ISOTOPES[iso]
    M = I.mass_MeV
    qw = float(weak_charge(P, I.Z, I.N))
    lead = G_F**2 * qw**2 * E**2 / math.pi * HBARC2_MEV2_CM2
    exact = lead * (1 - (2 * E / (M + 2 * E)) ** 2)
    sig = float(total_cross_section(P, E, iso, model=NOFF_STD))
    np.testing.assert_allclose(sig, exact, rtol=1e-12)
    np.testing.assert_allclose(sig, lead, rtol=2 * (2 * E / M) ** 2)


def test_reference_section9_table():
    # REFERENCE §9 [C]: Ge-72, s^2 = 0.23857, standard kinematic factor; 5 significant digits.
    table = {1: (6.2603e-42, 6.2592e-42), 3: (5.6343e-41, 5.6251e-41), 10: (6.2603e-40, 6.1475e-40),
             30: (5.6343e-39, 4.8039e-39)}
    helm_std = CrossSectionModel(kinematics="standard")
    for E, (noff, helm) in table.items():
        np.testing.assert_allclose(float(total_cross_section(P, float(E), "Ge72", model=NOFF_STD)), noff, rtol=1e-4)
        np.testing.assert_allclose(float(total_cross_section(P, float(E), "Ge72", model=helm_std)), helm, rtol=1e-4)
    np.testing.assert_allclose(float(weak_charge(P, 32, 40)), -19.2685, rtol=1e-5)
    np.testing.assert_allclose(E_R_max(10.0, ISOTOPES["Ge72"].mass_MeV) * 1e3, 2.9851, rtol=1e-4)


def test_weak_charge_conventions_agree():
    # Convention B: Q_W = N - (1 - 4 s^2) Z with prefactor G_F^2 M/(4 pi) (tests/reference.py, written
    # independently) equals convention A (Z g_p + N g_n, G_F^2 M / pi): rtol 1e-12 (rounding).
    for iso in ("Cs133", "Ge72", "Ar40"):
        I = ISOTOPES[iso]
        qb = I.N - (1 - 4 * 0.23857) * I.Z
        np.testing.assert_allclose(float(weak_charge(P, I.Z, I.N, convention="B")), qb, rtol=1e-13)
        for E, ER in ((30.0, 0.005), (5.0, 1e-4), (50.0, 0.02)):
            ours = float(differential_cross_section(P, E, ER, iso))
            ref = dsigma_sm(E, ER, I.Z, I.N, I.mass_MeV, I.A)
            np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_kinematics():
    M = ISOTOPES["Ge72"].mass_MeV
    for E in (1.0, 8.0, 40.0):
        er = E_R_max(E, M)
        np.testing.assert_allclose(float(E_nu_min(er, M)), E, rtol=1e-13)  # inverse functions
        # above E_R,max the cross section vanishes, just below it is positive
        assert float(differential_cross_section(P, E, er * (1 + 1e-9), "Ge72")) == 0.0
        assert float(differential_cross_section(P, E, er * (1 - 1e-6), "Ge72")) > 0.0


def test_radiative_couplings():
    # REFERENCE §1.3 [C]: PDG-style formula at s^2 = 0.23875 gives (0.015203, -0.512213) (matches nuDL).
    gp, gn = PDGRadiative()(0.23875)
    np.testing.assert_allclose([float(gp), float(gn)], [0.015203, -0.512213], atol=2e-6)
    gp, gn = COUPLING_PRESETS["dukecevns_giunti"](0.2)
    assert (float(gp), float(gn)) == (0.0227, -0.5117)
    # A fixed coupling set gives dsigma proportional to (Z g_p + N g_n)^2 exactly
    model = CrossSectionModel(couplings="dukecevns_giunti")
    I = ISOTOPES["Cs133"]
    r = float(differential_cross_section(P, 30.0, 0.005, "Cs133", model=model)) / float(
        differential_cross_section(P, 30.0, 0.005, "Cs133"))
    expect = ((I.Z * 0.0227 - I.N * 0.5117) / (I.Z * (0.5 - 2 * 0.23857) - 0.5 * I.N)) ** 2
    np.testing.assert_allclose(r, expect, rtol=1e-12)


def test_charge_radius_corrections():
    # <r^2_nue> = -0.83e-32 cm^2 (SM) gives delta g_p = -(sqrt2 pi alpha / 3 G_F) <r^2> = 0.0197, the
    # Erler value 0.0196964 of REFERENCE §1.3 to the 2 digits of the radius (1%).
    coeff = math.sqrt(2) * math.pi * ALPHA / (3 * G_F)
    np.testing.assert_allclose(coeff * 0.83e-32 / HBARC2_MEV2_CM2, 0.0196964, rtol=1e-2)
    I = ISOTOPES["Ar40"]
    model = CrossSectionModel(charge_radius_correction="giunti")
    corr = CHARGE_RADIUS_CORRECTIONS["giunti"]
    gp = 0.5 - 2 * 0.23857
    for fl in range(3):
        ratio = float(differential_cross_section(P, 30.0, 0.01, "Ar40", flavour=fl, model=model)) / float(
            differential_cross_section(P, 30.0, 0.01, "Ar40", flavour=fl))
        expect = ((I.Z * (gp + corr[fl]) - 0.5 * I.N) / (I.Z * gp - 0.5 * I.N)) ** 2
        np.testing.assert_allclose(ratio, expect, rtol=1e-12)
    # the same shift through the parameter <r^2> (per flavour, 1e-32 cm^2)
    r2 = -corr[0] / coeff / (1e-32 / HBARC2_MEV2_CM2)
    p2 = P.replace(charge_radius2_1e32_cm2=jnp.array([r2, 0.0, 0.0]))
    np.testing.assert_allclose(float(differential_cross_section(p2, 30.0, 0.01, "Ar40")),
                               float(differential_cross_section(P, 30.0, 0.01, "Ar40", model=model)), rtol=1e-12)
    # legacy dukecevns type 3 flips the sign for antineutrinos
    leg = CrossSectionModel(charge_radius_correction="giunti_legacy")
    a = float(differential_cross_section(P, 30.0, 0.01, "Ar40", antineutrino=True, model=leg))
    expect = ((I.Z * (gp - 0.02191) - 0.5 * I.N) / (I.Z * gp - 0.5 * I.N)) ** 2
    np.testing.assert_allclose(a / float(differential_cross_section(P, 30.0, 0.01, "Ar40")), expect, rtol=1e-12)


def test_nsi_diagonal_and_flavour_changing():
    # Q_ee = (g_p + 2eu + ed) Z + (g_n + eu + 2ed) N; flavour-changing eps_{mu e} adds in quadrature.
    I = ISOTOPES["Cs133"]
    gp = 0.5 - 2 * 0.23857
    m = CrossSectionModel(form_factor=NoFormFactor())
    eu = np.zeros((3, 3))
    ed = np.zeros((3, 3))
    eu[0, 0], ed[0, 0] = 0.1, -0.05
    eu[1, 0] = eu[0, 1] = 0.07
    p = P.replace(eps_u=jnp.asarray(eu), eps_d=jnp.asarray(ed))
    q_ee = (gp + 0.2 - 0.05) * I.Z + (-0.5 + 0.1 - 0.1) * I.N
    q_me = 0.14 * I.Z + 0.07 * I.N
    sm = I.Z * gp - 0.5 * I.N
    ratio_e = float(differential_cross_section(p, 30.0, 0.005, "Cs133", 0, model=m)) / float(
        differential_cross_section(P, 30.0, 0.005, "Cs133", 0, model=m))
    np.testing.assert_allclose(ratio_e, (q_ee**2 + q_me**2) / sm**2, rtol=1e-12)
    # nu_mu sees eps_{e mu} in quadrature only (its diagonal is SM)
    ratio_mu = float(differential_cross_section(p, 30.0, 0.005, "Cs133", 1, model=m)) / float(
        differential_cross_section(P, 30.0, 0.005, "Cs133", 1, model=m))
    np.testing.assert_allclose(ratio_mu, (sm**2 + q_me**2) / sm**2, rtol=1e-12)


def test_zprime_limits_dip_and_charges():
    I = ISOTOPES["Ge72"]
    M = I.mass_MeV
    sm = float(differential_cross_section(P, 8.0, 1e-3, "Ge72"))
    # limits: g -> 0 and m -> infinity give the SM (relative shift ~ 3 g^2 A / (sqrt2 G_F m^2 |Q_W|))
    assert float(differential_cross_section(P.replace(g_zprime=0.0, m_zprime_MeV=1.0), 8.0, 1e-3, "Ge72")) == sm
    heavy = float(differential_cross_section(P.replace(g_zprime=1e-4, m_zprime_MeV=1e9), 8.0, 1e-3, "Ge72"))
    np.testing.assert_allclose(heavy, sm, rtol=1e-9)
    # the interference dip: universal Z' with F_p = F_n, Q_W F + 3 g^2 A F/(sqrt2 G_F (q^2+m^2)) = 0
    g, m = 2e-5, 5.0
    qw = abs(float(weak_charge(P, I.Z, I.N)))
    q2 = 3 * g**2 * I.A / (math.sqrt(2) * G_F * qw) - m**2
    er_dip = -M + math.sqrt(M * M + q2)  # solves 2 M E_R + E_R^2 = q2
    assert 0 < er_dip < E_R_max(10.0, M)
    pz = P.replace(g_zprime=g, m_zprime_MeV=m)
    sm10 = float(differential_cross_section(P, 10.0, er_dip, "Ge72"))
    at = float(differential_cross_section(pz, 10.0, er_dip, "Ge72"))
    around = [float(differential_cross_section(pz, 10.0, er_dip * f, "Ge72")) for f in (0.8, 1.25)]
    assert at < 1e-12 * sm10 and min(around) > 1e-3 * sm10
    # B-L: shift -g^2 A/(...) (constructive); B-L_e-3L_mu+L_tau: nu_mu shift is 3x nu_e's
    noff = lambda ch: CrossSectionModel(form_factor=NoFormFactor(), zprime_charges=ch)
    shift = g**2 * I.A / (math.sqrt(2) * G_F * (2 * M * 1e-3 + 1e-6 + m * m))
    sm0 = float(differential_cross_section(P, 8.0, 1e-3, "Ge72", model=noff(B_MINUS_L)))
    r = float(differential_cross_section(pz, 8.0, 1e-3, "Ge72", model=noff(B_MINUS_L))) / sm0
    np.testing.assert_allclose(r, ((-qw - shift) / qw) ** 2, rtol=1e-12)
    for fl, qnu in enumerate((-1.0, -3.0, 1.0)):
        r = float(differential_cross_section(pz, 8.0, 1e-3, "Ge72", fl, model=noff(B_MINUS_LE_3LMU_PLUS_LTAU))) / sm0
        np.testing.assert_allclose(r, ((-qw + qnu * shift) / qw) ** 2, rtol=1e-12)


@pytest.mark.parametrize("charges", ["14N+15.1Z", "nucleon"])
def test_scalar_adds_incoherently(charges):
    I = ISOTOPES["Ge72"]
    M, E, ER, g, m = I.mass_MeV, 6.0, 5e-4, 2e-6, 3.0
    model = CrossSectionModel(scalar_charges=charges)
    if charges == "14N+15.1Z":
        qphi = g**2 * (14 * I.A + 1.1 * I.Z)
    else:  # pyCEvNS nucleon-level: c = m_N sum_q f_Tq / m_q
        cp = 938.27208943 * (0.0208 / 2.2 + 0.0411 / 4.7)
        cn = 939.56542194 * (0.0189 / 2.2 + 0.0451 / 4.7)
        qphi = g**2 * (I.Z * cp + I.N * cn)
    q2 = 2 * M * ER + ER**2
    F = float(Helm()(math.sqrt(q2), Helm().default_rms_fm(I.A)))
    expect = M**2 * ER * qphi**2 * F**2 / (4 * math.pi * E**2 * (q2 + m * m) ** 2) * HBARC2_MEV2_CM2
    p = P.replace(g_scalar=g, m_scalar_MeV=m)
    diff = float(differential_cross_section(p, E, ER, "Ge72", model=model)) - float(
        differential_cross_section(P, E, ER, "Ge72", model=model))
    np.testing.assert_allclose(diff, expect, rtol=1e-9)  # difference of two O(1) numbers: rounding ~1e-12/1e-3


def test_magnetic_moment_adds_incoherently():
    I = ISOTOPES["Ar40"]
    E, ER, mu = 30.0, 0.01, 3.0  # mu in 1e-10 mu_B
    q2 = 2 * I.mass_MeV * ER + ER**2
    F = float(Helm()(math.sqrt(q2), Helm().default_rms_fm(I.A)))
    expect = (math.pi * ALPHA**2 * (mu * 1e-10) ** 2 / M_ELECTRON**2 * (1 / ER - 1 / E + ER / (4 * E * E))
              * I.Z**2 * F**2 * HBARC2_MEV2_CM2)
    p = P.replace(magnetic_moment_1e10_muB=jnp.array([mu, 0.0, 0.0]))
    diff = float(differential_cross_section(p, E, ER, "Ar40")) - float(differential_cross_section(P, E, ER, "Ar40"))
    np.testing.assert_allclose(diff, expect, rtol=1e-8)
    # only the flavour with the moment is affected
    assert float(differential_cross_section(p, E, ER, "Ar40", 1)) == float(differential_cross_section(P, E, ER, "Ar40", 1))


FIELDS = {
    "sin2_theta_w": 0.238, "delta_gp_v": 0.001, "delta_gn_v": -0.002, "eps_u": 0.05 * np.eye(3) + 0.01,
    "eps_d": -0.03 * np.eye(3) + 0.02, "g_zprime": 2e-5, "m_zprime_MeV": 8.0, "g_scalar": 3e-6,
    "m_scalar_MeV": 5.0, "magnetic_moment_1e10_muB": np.array([2.0, 1.0, 0.5]),
    "charge_radius2_1e32_cm2": np.array([-0.8, -0.5, -0.3]), "delta_rp_fm": 0.05, "delta_rn_fm": 0.2,
}


@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize("where", ["bulk", "edge", "light"])
def test_gradients_every_parameter(name, where):
    M = ISOTOPES["Ge72"].mass_MeV
    E = 6.0
    ER = {"bulk": 2e-4, "edge": E_R_max(E, M) * (1 - 1e-7), "light": 2e-4}[where]
    base = P.replace(**{k: jnp.asarray(v, float) for k, v in FIELDS.items()})
    if where == "light":  # very light mediators: propagators ~ 1/q^2, still finite
        base = base.replace(m_zprime_MeV=jnp.asarray(1e-3), m_scalar_MeV=jnp.asarray(1e-3))

    def f(x):
        return differential_cross_section(base.replace(**{name: x}), E, ER, "Ge72") * 1e40

    x0 = jnp.asarray(getattr(base, name), float)
    g = jax.grad(f)(x0)
    assert np.all(np.isfinite(np.asarray(g)))
    check_grads(f, (x0,), order=1, modes=["fwd", "rev"], eps=1e-4 * float(jnp.max(jnp.abs(x0))), rtol=1e-3)
