"""Quenching models: published tables, monotonicity/threshold, the exact Jacobian, gradients, loaders."""

import math
import re

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from scipy.optimize import brentq

from cevnsjax.detector import quenching as qm
from cevnsjax.detector.quenching import (
    ConstantQuenching,
    Lindhard,
    ModifiedLindhard,
    PolynomialLightYield,
    TabulatedQuenching,
)
from cevnsjax.io import detector_tables as dt

GE_Z, GE_A = 32, 72.630  # natural Ge, standard atomic weight (IUPAC)

# (Z, standard atomic weight A [u], k, eps per keV) -- REFERENCE §4 table, k to 4 digits, eps to 5.
K_TABLE = {
    "Ge": (32, 72.630, 0.1573, 3.5374e-3),
    "Si": (14, 28.085, 0.1458, 2.4344e-2),
    "Na": (11, 22.98977, 0.1372, 4.2735e-2),
    "I": (53, 126.90447, 0.1666, 1.0899e-3),
    "Cs": (55, 132.90545, 0.1668, 9.9966e-4),
    "Ar": (18, 39.948, 0.1445, 1.3543e-2),
    "Xe": (54, 131.293, 0.1658, 1.0434e-3),
    "Ca": (20, 40.078, 0.1548, 1.0592e-2),
    "W": (74, 183.84, 0.1729, 5.0022e-4),
    "O": (8, 15.999, 0.1330, 8.9844e-2),
    "Al": (13, 26.98154, 0.1416, 2.8940e-2),
}

# REFERENCE §4 Ge benchmark: E_R [keV], Q std k=0.157, std k=0.153, mod (k=0.153, q=-15e-5), E_I mod [keV]
GE_BENCH = np.array(
    [
        [0.05, 0.11467, 0.11207, 0.96016, 0.04801],
        [0.10, 0.12586, 0.12305, 0.54709, 0.05471],
        [0.25, 0.14224, 0.13912, 0.30873, 0.07718],
        [0.50, 0.15595, 0.15259, 0.23740, 0.11870],
        [1.00, 0.17099, 0.16736, 0.20977, 0.20977],
        [2.00, 0.18756, 0.18366, 0.20486, 0.40973],
        [5.00, 0.21240, 0.20811, 0.21660, 1.08298],
    ]
)


def ge_mod(k=0.153, q=-15e-5, **kw):
    return ModifiedLindhard(GE_Z, GE_A, k, q, **kw)


# ------------------------------------------------------------------------------------------ tables


@pytest.mark.parametrize("name", sorted(K_TABLE))
def test_lindhard_k_and_eps_table(name):
    Z, A, k_ref, eps_ref = K_TABLE[name]
    # the table prints k to 4 decimals: agree to half a unit in the last digit
    assert abs(qm.lindhard_k(Z, A) - k_ref) <= 0.5e-4
    # eps/E_R printed to 5 significant digits: relative 5e-5 (half a unit in the 5th digit)
    assert qm.lindhard_eps_per_keV(Z) == pytest.approx(eps_ref, rel=5e-5)
    # k=None uses the formula
    E = jnp.array([1.0])
    assert float(Lindhard(Z, A).Q(E)[0]) == pytest.approx(float(Lindhard(Z, A, qm.lindhard_k(Z, A)).Q(E)[0]), rel=1e-15)


def test_ge_benchmark_table():
    E = jnp.asarray(GE_BENCH[:, 0])
    # 5-decimal table: atol 5.01e-6 = half a unit in the last printed digit (+ rounding slack)
    np.testing.assert_allclose(Lindhard(GE_Z, GE_A, 0.157).Q(E), GE_BENCH[:, 1], rtol=0, atol=5.01e-6)
    np.testing.assert_allclose(Lindhard(GE_Z, GE_A, 0.153).Q(E), GE_BENCH[:, 2], rtol=0, atol=5.01e-6)
    # default smooth cap (q_max=1, width 1e-3) changes Q(0.05) = 0.96016 by ~1e-20: invisible here
    m = ge_mod()
    np.testing.assert_allclose(m.Q(E), GE_BENCH[:, 3], rtol=0, atol=5.01e-6)
    np.testing.assert_allclose(m.E_ee(E), GE_BENCH[:, 4], rtol=0, atol=5.01e-6)
    # hard cap agrees to round-off where Q < 1
    np.testing.assert_allclose(ge_mod(cap_width=0.0).Q(E), m.Q(E), rtol=1e-14)


def test_modified_lindhard_constant_offset():
    # E_R (-q/eps) = -q Z^(7/3)/11.5 keV: for q<0, E_ee(uncapped) = E_R L(E_R) + c, c = 282.7 |q| keV (DRESDEN_II.md)
    c = 15e-5 * GE_Z ** (7 / 3) / 11.5
    assert c / 15e-5 == pytest.approx(282.7, abs=0.05)  # 4-digit number quoted in DRESDEN_II.md
    E = jnp.geomspace(0.1, 10, 50)
    np.testing.assert_allclose(
        ge_mod(q_max=None).E_ee(E), E * Lindhard(GE_Z, GE_A, 0.153).Q(E) + c, rtol=1e-13
    )  # round-off only


def test_constant_and_polynomial():
    E = jnp.array([1.0, 10.0, 30.0])
    np.testing.assert_allclose(ConstantQuenching().E_ee(E), 0.0878 * E, rtol=1e-15)
    np.testing.assert_allclose(ConstantQuenching(0.08).dEee_dER(E), 0.08, rtol=1e-15)
    p = PolynomialLightYield()
    x = np.asarray(E) * 1e-3
    ref = 1e3 * (0.0554628 * x + 4.30681 * x**2 - 111.707 * x**3 + 840.384 * x**4)  # keVee, independent Horner-free form
    np.testing.assert_allclose(p.E_ee(E), ref, rtol=1e-13)
    dref = 0.0554628 + 2 * 4.30681 * x - 3 * 111.707 * x**2 + 4 * 840.384 * x**3
    np.testing.assert_allclose(p.dEee_dER(E), dref, rtol=1e-12)


# ------------------------------------------------------------------------------------------ limits / threshold


def test_limits_at_zero_and_below():
    E = jnp.array([-1.0, 0.0, 1e-40, 1e-3])
    assert np.all(np.asarray(Lindhard(GE_Z, GE_A).Q(E))[:3] == 0.0)
    assert np.all(np.asarray(ge_mod().Q(E))[:3] == 1.0)  # q<0: capped limit q_max
    assert np.all(np.asarray(ge_mod(q=5e-5).Q(E)) == 0.0)  # q>0: cutoff, clipped at 0
    # E_ee -> 0 continuously with the cap
    assert float(ge_mod().E_ee(jnp.array(1e-6))) == pytest.approx(1e-6, rel=1e-12)


def test_threshold_q_negative_hard_cap():
    grid = jnp.geomspace(1e-3, 10.0, 2000)
    m = ge_mod(cap_width=0.0)
    thr = float(qm.monotonic_threshold(m, grid))
    g = np.asarray(grid)
    i = int(np.searchsorted(g, thr))
    assert g[i] == thr
    # independent root of Q_raw(E) = 1 with scipy (Lindhard part in numpy)
    def qraw(E):
        eps = 11.5 * GE_Z ** (-7 / 3) * E
        g_ = 3 * eps**0.15 + 0.7 * eps**0.6 + eps
        return 0.153 * g_ / (1 + 0.153 * g_) + 15e-5 / eps

    root = brentq(lambda E: qraw(E) - 1.0, 1e-3, 1.0, xtol=1e-15)
    assert 0.045 < root < 0.05  # REFERENCE §4: "Q exceeds 1 below about 0.05 keV"
    assert g[i - 1] < root <= g[i]  # threshold is the first grid point above the Q = 1 crossing
    Eee = np.asarray(m.E_ee(grid))
    assert np.all(np.diff(Eee[i:]) > 0)  # monotonic above
    assert np.all(np.asarray(m.Q_raw(grid[i:])) <= 1.0)
    assert np.all(np.asarray(m.Q_raw(grid[:i])) > 1.0)  # below: Q > 1, unphysical
    assert np.all(np.asarray(m.Q(grid[:i])) == 1.0)


def test_threshold_q_negative_smooth_cap_and_uncapped():
    grid = jnp.geomspace(1e-3, 10.0, 2000)
    thr = float(qm.monotonic_threshold(ge_mod(), grid))  # physical needs Q_raw <= 1 - 30*1e-3
    assert float(ge_mod().Q_raw(thr)) <= 0.97
    thr_u = float(qm.monotonic_threshold(ge_mod(q_max=None), grid))  # uncapped: physical is Q_raw <= 1
    assert thr_u == float(qm.monotonic_threshold(ge_mod(cap_width=0.0), grid))
    # smooth cap keeps E_ee strictly increasing everywhere (its dip term is <= w ln2 << dE_ee/dE_R)
    assert np.all(np.diff(np.asarray(ge_mod().E_ee(grid))) > 0)


def test_threshold_q_positive_cutoff():
    grid = jnp.linspace(1e-3, 5.0, 5000)
    m = ge_mod(q=2e-4)
    thr = float(qm.monotonic_threshold(m, grid))
    g = np.asarray(grid)
    i = int(np.searchsorted(g, thr))
    Eee = np.asarray(m.E_ee(grid))
    assert np.all(np.diff(Eee[i:]) > 0) and np.all(np.asarray(m.Q(grid[i:])) > 0)
    assert Eee[i - 1] == 0.0 and Eee[i - 2] == 0.0  # flat plateau below: not monotonic
    assert 0.2 < thr < 1.0


def test_threshold_lindhard_and_polynomial_whole_grid():
    grid = jnp.geomspace(1e-3, 60.0, 500)
    assert float(qm.monotonic_threshold(Lindhard(GE_Z, GE_A), grid)) == float(grid[0])
    assert float(qm.monotonic_threshold(PolynomialLightYield(), grid)) == float(grid[0])


# ------------------------------------------------------------------------------------------ Jacobian


def _spectrum(E):
    return 3.0 * jnp.exp(-E / 0.7) + 0.2 / (1.0 + E)


def _spectrum_integral(lo, hi):
    return 3.0 * 0.7 * (np.exp(-lo / 0.7) - np.exp(-hi / 0.7)) + 0.2 * (np.log1p(hi) - np.log1p(lo))


@pytest.mark.parametrize(
    "model,edges_ER",
    [
        (Lindhard(GE_Z, GE_A, 0.157), np.linspace(0.2, 5.0, 25)),
        (ge_mod(), np.geomspace(0.06, 5.0, 30)),  # above the threshold (~0.05 keV)
        (ge_mod(q=5e-5), np.linspace(0.4, 4.0, 19)),  # above the q>0 cutoff
        (PolynomialLightYield(), np.linspace(2.0, 50.0, 13)),
        (ConstantQuenching(), np.linspace(1.0, 40.0, 14)),
    ],
    ids=["lindhard", "modlindhard_qneg", "modlindhard_qpos", "poly2021", "constant"],
)
def test_jacobian_counts_in_Eee_bins(model, edges_ER):
    # Integral over E_ee bins with dR/dE_ee = (dR/dE_R)/(Q + E_R Q') equals the E_R-bin integral
    # (analytic here); 1e-8 relative: 16-point Gauss-Legendre on smooth integrands + bisection to round-off.
    edges_Eee = model.E_ee(jnp.asarray(edges_ER))
    got = qm.counts_in_Eee_bins(model, _spectrum, edges_Eee, (edges_ER[0] * 0.5, edges_ER[-1] * 2.0))
    ref = _spectrum_integral(edges_ER[:-1], edges_ER[1:])
    np.testing.assert_allclose(got, ref, rtol=1e-8)


def test_jacobian_talk_form_is_wrong():
    # Dropping E_R dQ/dE_R (using dR/dE_ee = (dR/dE_R)/Q) misses by > 1 % for Lindhard: the test is sensitive.
    m = Lindhard(GE_Z, GE_A, 0.157)
    edges_ER = np.linspace(0.2, 5.0, 25)
    edges_Eee = np.asarray(m.E_ee(jnp.asarray(edges_ER)))
    x, w = np.polynomial.legendre.leggauss(16)
    lo, hi = edges_Eee[:-1], edges_Eee[1:]
    Eee = 0.5 * (hi + lo)[:, None] + 0.5 * (hi - lo)[:, None] * x
    ER = qm.E_R_from_Eee(m, jnp.asarray(Eee), 0.1, 10.0)
    wrong = np.sum(np.asarray(_spectrum(ER) / m.Q(ER)) * w, axis=1) * 0.5 * (hi - lo)
    ref = _spectrum_integral(edges_ER[:-1], edges_ER[1:])
    assert np.max(np.abs(wrong / ref - 1)) > 0.01


def test_inversion_gradient_is_implicit_function():
    # dE_R/dk at fixed E_ee = -(dE_ee/dk)/(dE_ee/dE_R); checked against central finite differences.
    def ER(k):
        return qm.E_R_from_Eee(Lindhard(GE_Z, GE_A, k), jnp.array(0.2), 0.01, 20.0)

    g = jax.grad(ER)(0.157)
    h = 1e-6
    fd = (ER(0.157 + h) - ER(0.157 - h)) / (2 * h)
    assert float(g) == pytest.approx(float(fd), rel=1e-6)  # FD truncation ~h^2, round-off ~1e-10/h
    assert float(Lindhard(GE_Z, GE_A, 0.157).E_ee(ER(0.157))) == pytest.approx(0.2, rel=1e-14)


def test_spectrum_in_Eee_zero_where_flat():
    m = ge_mod(q=2e-4)
    Eee, dR = qm.spectrum_in_Eee(m, jnp.array([0.05, 1.0]), jnp.array([1.0, 1.0]))
    assert float(dR[0]) == 0.0 and float(Eee[0]) == 0.0 and np.isfinite(float(dR[1]))


# ------------------------------------------------------------------------------------------ gradients


def _q_of(k, q, E, **kw):
    return ModifiedLindhard(GE_Z, GE_A, k, q, **kw).Q(E)


def _crossing(qval, target, k=0.153):
    return brentq(lambda E: float(ge_mod(k, qval, q_max=None).Q_raw(E)) - target, 1e-4, 5.0, xtol=1e-14)


@pytest.mark.parametrize(
    "k,q,E,label",
    [
        (0.153, -15e-5, 0.5, "regular"),
        (0.153, -15e-5, None, "at the smooth cap, Q_raw = 1"),
        (0.153, -15e-5, "cap+", "just inside the cap, Q_raw = 0.999"),
        (0.153, 1e-10, 0.3, "q -> 0+"),
        (0.153, -1e-10, 0.3, "q -> 0-"),
        (0.153, 0.0, 0.3, "q = 0"),
        (0.153, 2e-4, "cut", "q > 0 just above the cutoff, Q = 0.01"),
        (0.153, 2e-4, 0.05, "q > 0 in the clipped region (Q = 0)"),
    ],
)
def test_check_grads_Q(k, q, E, label):
    if E is None:
        E = _crossing(q, 1.0)
    elif E == "cap+":
        E = _crossing(q, 0.999)
    elif E == "cut":
        E = _crossing(q, 0.01)
    # eps=1e-7: the smooth cap bends over dQ ~ 1e-3, i.e. dE_R ~ 5e-5 keV; step must be far smaller.
    # tolerances: check_grads compares to central differences; 1e-4 relative allows their O(eps^2 f''') error.
    # q enters in units of 1e-5 so that one step suits all three arguments (dQ/dq = -1/eps ~ -6e3 near the cap).
    jax.test_util.check_grads(
        lambda k, qs, E: _q_of(k, qs * 1e-5, E), (k, q / 1e-5, E), order=1, modes=("fwd", "rev"), eps=1e-7, atol=1e-5, rtol=1e-4
    )
    g = jax.grad(lambda k, q, E: _q_of(k, q, E), argnums=(0, 1, 2))(k, q, E)
    assert all(np.isfinite(float(x)) for x in g), label


def test_check_grads_lindhard_second_order():
    jax.test_util.check_grads(lambda k, E: Lindhard(GE_Z, GE_A, k).Q(E), (0.157, 0.7), order=2, eps=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "model_fn",
    [
        lambda p: Lindhard(GE_Z, GE_A, p),
        lambda p: ModifiedLindhard(GE_Z, GE_A, p, -15e-5),
        lambda p: ModifiedLindhard(GE_Z, GE_A, 0.153, p * 1e-3),
        lambda p: ModifiedLindhard(GE_Z, GE_A, p, -15e-5, cap_width=0.0),
        lambda p: ModifiedLindhard(GE_Z, GE_A, p, -15e-5, q_max=None),
        lambda p: ConstantQuenching(p),
        lambda p: PolynomialLightYield(a=p),
    ],
)
@pytest.mark.parametrize("p", [0.0, 0.157, -0.05])
def test_no_nan_values_or_gradients_anywhere(model_fn, p):
    # includes E_R = 0, negative, denormal, huge; parameters at 0 and negative (k < 0 is treated as 0).
    # The parameter enters as an array, as in jit/grad/scans (a Python float k <= 0 is refused at construction,
    # see test_python_number_k_must_be_positive).
    p = jnp.asarray(p)
    E = jnp.array([-1.0, 0.0, 5e-324, 1e-35, 1e-3, 0.047, 1.0, 1e3])

    def f(p, E):
        m = model_fn(p)
        return jnp.sum(m.Q(E) + m.E_ee(E) + m.dEee_dER(E))

    assert np.isfinite(float(f(p, E)))
    gp, gE = jax.grad(f, argnums=(0, 1))(p, E)
    assert np.isfinite(float(gp)) and np.all(np.isfinite(np.asarray(gE)))


@pytest.mark.parametrize("k", [0.0, -0.1, float("nan")])
def test_python_number_k_must_be_positive(k):
    with pytest.raises(ValueError, match="k=.*must be finite and > 0"):
        Lindhard(GE_Z, GE_A, k)
    with pytest.raises(ValueError, match="k=.*must be finite and > 0"):
        ModifiedLindhard(GE_Z, GE_A, k, -15e-5)


def test_jit_vmap_and_no_retrace():
    traces = []

    @jax.jit
    def f(model, E):
        traces.append(1)
        return model.Q(E)

    E = jnp.linspace(0.1, 2.0, 7)
    a = f(ge_mod(0.153, -15e-5), E)
    b = f(ge_mod(0.16, -1e-5), E)  # new traced values, same statics: no new trace
    assert len(traces) == 1 and not np.allclose(a, b)
    ks = jnp.array([0.15, 0.157, 0.16])
    batched = jax.vmap(lambda k: Lindhard(GE_Z, GE_A, k).Q(E))(ks)
    np.testing.assert_allclose(batched[1], Lindhard(GE_Z, GE_A, 0.157).Q(E), rtol=1e-15)


def test_float32_path():
    with jax.enable_x64(False):
        E = jnp.asarray(GE_BENCH[:, 0], dtype=jnp.float32)
        Q = ge_mod().Q(E)
        assert Q.dtype == jnp.float32
        # float32 has ~7 digits; the cap's softplus subtraction costs ~1e-7 absolute
        np.testing.assert_allclose(Q, GE_BENCH[:, 3], atol=2e-5)
        np.testing.assert_allclose(Lindhard(GE_Z, GE_A, 0.157).Q(E), GE_BENCH[:, 1], atol=2e-5)
        g = jax.grad(lambda k, q: jnp.sum(_q_of(k, q, jnp.array([0.0, 0.01, 0.5], jnp.float32))), argnums=(0, 1))(
            jnp.float32(0.153), jnp.float32(-15e-5)
        )
        assert all(np.isfinite(np.asarray(x)) for x in g)
        thr = qm.monotonic_threshold(ge_mod(cap_width=0.0), jnp.geomspace(1e-3, 10.0, 200, dtype=jnp.float32))
        assert 0.045 < float(thr) < 0.06


# ------------------------------------------------------------------------------------------ loaders


def test_load_dresden_ii(data_dir):
    t = dt.load_dresden_ii_qf(data_dir / "dresden_ii" / "QF_Fef_YBe.txt")
    fef, ybe = t["Fef"], t["YBe"]
    assert fef.E_R_keV.shape == (451,)
    # values read from the file (rows 0.00, 1.00, 4.50 keVnr): exact
    np.testing.assert_array_equal(fef.Q(jnp.array([0.0, 1.0, 4.5])), [0.43610, 0.24403, 0.20933])
    np.testing.assert_array_equal(ybe.Q(jnp.array([0.0, 1.0, 4.5])), [0.37738, 0.19387, 0.21862])
    # midway between the first two rows: linear interpolation (round-off only)
    assert float(fef.Q(0.005)) == pytest.approx(0.5 * (0.43610 + 0.43418), rel=1e-14)
    # PROVENANCE: at 4.5 keVnr Lindhard (k=0.157) gives 0.209 and Fef 0.2092 (to 3 digits)
    assert float(Lindhard(GE_Z, GE_A, 0.157).Q(4.5)) == pytest.approx(0.20933, abs=1e-3)
    # derivative in E_R inside a segment = slope of the table (exact up to round-off)
    assert float(jax.grad(fef.Q)(0.005)) == pytest.approx((0.43418 - 0.43610) / 0.01, rel=1e-9)
    # the scale nuisance is traced
    assert float(jax.grad(lambda s: TabulatedQuenching(fef.E_R_keV, fef.Q_values, s).Q(1.0))(1.0)) == pytest.approx(0.24403)


def test_dresden_fef_is_not_monotonic(data_dir):
    # Finding: the Fef table's E_ee = Q E_R *decreases* between 1.14 and 1.34 keVnr (Q falls ~0.19/keV),
    # so no Jacobian/inversion there; integrate in E_R instead. YBe is monotonic from the first E_R > 0.
    t = dt.load_dresden_ii_qf(data_dir / "dresden_ii" / "QF_Fef_YBe.txt")
    grid = jnp.asarray(t["Fef"].E_R_keV)
    assert float(qm.monotonic_threshold(t["Fef"], grid)) == pytest.approx(1.34, abs=1e-12)
    assert float(qm.monotonic_threshold(t["YBe"], grid)) == pytest.approx(0.01, abs=1e-12)
    Eee = np.asarray(t["Fef"].E_ee(grid))
    assert Eee[134] < Eee[114]


def test_jacobian_tabulated_ybe(data_dir):
    # One table segment per bin (edges on the 0.01 keV nodes): Q is linear inside each bin, the
    # integrand smooth, so 16-point Gauss-Legendre gives 1e-8 again.
    ybe = dt.load_dresden_ii_qf(data_dir / "dresden_ii" / "QF_Fef_YBe.txt")["YBe"]
    edges_ER = ybe.E_R_keV[10:151]  # 0.10 ... 1.50 keVnr
    got = qm.counts_in_Eee_bins(ybe, _spectrum, ybe.E_ee(jnp.asarray(edges_ER)), (0.01, 4.5))
    np.testing.assert_allclose(got, _spectrum_integral(edges_ER[:-1], edges_ER[1:]), rtol=1e-8)


def test_load_coherent_csi_qf(data_dir):
    d = data_dir / "coherent_csi_2017"
    chi = dt.load_coherent_csi_qf(d / "qfData_chicago.txt")
    assert chi.E_R_keV.shape == (7,)
    assert (chi.E_R_keV[0], chi.E_R_err_hi[0], chi.Q[0], chi.Q_err_lo[0]) == (2.87, 0.56, 0.0521, 0.017193)
    assert (chi.E_R_keV[-1], chi.Q[-1]) == (16.37, 0.0716)
    tunl = dt.load_coherent_csi_qf(d / "qfData_tunl.txt")
    assert tunl.E_R_keV.shape == (12,) and np.all(np.diff(tunl.E_R_keV) > 0)  # sorted (file is not)
    assert tunl.E_R_keV[0] == 3.4459999296814203 and tunl.Q[0] == 0.08647405437742796
    assert tunl.E_R_err_hi[0] == 0.3900001756846905 and tunl.E_R_err_lo[0] == 0.3599999472498894
    assert tunl.Q_err_hi[0] == 0.0008102055139337558 and tunl.Q_err_lo[0] == 0.0008123129818103527
    tq = tunl.to_quenching()
    assert float(tq.Q(41.60499945282936)) == pytest.approx(0.09893901332310652, rel=1e-15)


def test_load_scintillation_2021(data_dir):
    s = dt.load_coherent_csi_2021_scintillation(data_dir / "coherent_csi_2021" / "scintRespCoefficients.txt")
    assert list(s) == ["nominal", "syst0_plus", "syst0_minus", "syst1_plus", "syst1_minus"]
    n = s["nominal"]
    assert (n.a, n.b, n.c, n.d) == (0.0554628, 4.30681, -111.707, 840.384)
    assert s["syst1_minus"].d == 1050.68 and s["syst0_plus"].a == 0.0613632
    # Q(10 keVnr) = a + b x + c x^2 + d x^3, x = 0.01 MeVnr: 0.088200584 (hand arithmetic)
    assert float(n.Q(10.0)) == pytest.approx(0.088200584, rel=1e-12)


@pytest.mark.parametrize(
    "loader,text,line,msg",
    [
        (dt.load_dresden_ii_qf, "0.0 0.43 0.37\n0.01 0.42\n", 2,
         "expected 3 columns (E_R_keV, Q_Fef, Q_YBe) separated by commas, semicolons or whitespace, found 2"),
        (dt.load_dresden_ii_qf, "# c\n0.0 0.43 0.37\n0.01 abc 0.36\n", 3, "column 2 ('Q_Fef'): 'abc' is not a number"),
        (dt.load_dresden_ii_qf, "0.0 0.43 0.37\n0.01 nan 0.36\n", 2, "column 2 ('Q_Fef'): 'nan' is not finite"),
        (dt.load_coherent_csi_qf, "1, 0.1, 0.05, 0.01\n2, 0.1, 0.1, 0.06, 0.01, 0.01\n", 2,
         "expected 4 columns like the first data row (line 1), found 6"),
        (dt.load_coherent_csi_qf, "1, 0.1, 0.05\n", 1,
         "expected 4 or 6 columns separated by commas, semicolons or whitespace, found 3"),
        (dt.load_coherent_csi_2021_scintillation, "1 2 3 x4\n", 1, "column 4 ('d'): 'x4' is not a number"),
    ],
)
def test_malformed_files_raise(tmp_path, loader, text, line, msg):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"{p}:{line}: {msg}")):
        loader(p)


def test_malformed_structure_raises(tmp_path):
    p = tmp_path / "dec.txt"
    p.write_text("0.0 0.4 0.3\n0.2 0.4 0.3\n0.1 0.4 0.3\n")
    with pytest.raises(ValueError, match="strictly increasing"):
        dt.load_dresden_ii_qf(p)
    p2 = tmp_path / "empty.txt"
    p2.write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match=re.escape(f"{p2}: no data rows")):
        dt.load_dresden_ii_qf(p2)
    p3 = tmp_path / "scint.txt"
    p3.write_text("1 2 3 4\n")
    with pytest.raises(ValueError, match="expected 5 coefficient rows"):
        dt.load_coherent_csi_2021_scintillation(p3)


def test_invalid_construction():
    with pytest.raises(ValueError, match="q_max"):
        ModifiedLindhard(32, 72.63, 0.15, 0.0, q_max=-1.0)
    with pytest.raises(ValueError, match="Z="):
        Lindhard(0, 72.63)
    with pytest.raises(ValueError, match="strictly increasing"):
        TabulatedQuenching.from_arrays([0.0, 0.0], [0.1, 0.2])
    assert math.isfinite(float(ge_mod().Q(0.1)))
