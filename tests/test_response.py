"""Detector response: efficiencies, Gaussian resolution, PE statistics, arrival-time PDFs."""

import math
import re

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from scipy import stats

from cevnsjax.detector import response as rs
from cevnsjax.detector.response import (
    Coherent2017Efficiency,
    Coherent2021Efficiency,
    GeResolution,
)
from cevnsjax.io import detector_tables as dt

# ------------------------------------------------------------------------------------------ efficiencies


def _eff2017_ref(x):
    # coherent_parameters.yaml, written out independently: a/(1+exp(-k(x-x0))) * H(x-5)
    a, k, x0 = 0.6655, 0.4942, 10.8507
    H = 0.0 if x < 5 else (0.5 if x < 6 else 1.0)
    return a / (1.0 + math.exp(-k * (x - x0))) * H


def test_coherent_2017_efficiency_values():
    pe = [0.5, 4.5, 4.999, 5.0, 5.5, 5.999, 6.0, 6.5, 10.5, 10.8507, 20.5, 49.5]
    got = np.asarray(Coherent2017Efficiency()(jnp.asarray(pe)))
    np.testing.assert_allclose(got, [_eff2017_ref(x) for x in pe], rtol=1e-14, atol=0)  # same formula: round-off
    assert got[9] == pytest.approx(0.6655 / 2, rel=1e-15)  # at x0 the logistic is a/2
    assert got[8] == pytest.approx(0.30399, abs=5e-6)  # docstring value, 5 decimals


def test_coherent_2021_efficiency(data_dir):
    e = dt.load_coherent_csi_2021_efficiency(data_dir / "coherent_csi_2021" / "effCoefficients.txt")
    assert list(e) == ["nominal", "plus1sigma", "minus1sigma"]
    n = e["nominal"]
    assert (n.a, n.b, n.c, n.d) == (1.32045, 0.285979, 10.8646, -0.333322)  # file row 1
    assert e["minus1sigma"].c == 11.8832
    x = np.array([2.0, 8.0, 10.8646, 20.0, 59.9, 60.1])
    ref = np.maximum(1.32045 / (1 + np.exp(-0.285979 * (x - 10.8646))) - 0.333322, 0.0)
    ref[x > 60] = 0.0
    np.testing.assert_allclose(n(jnp.asarray(x)), ref, rtol=1e-14, atol=1e-16)
    assert float(n(2.0)) == 0.0  # negative logistic clipped
    # +1 sigma is the higher efficiency everywhere in the ROI
    xs = jnp.linspace(5.0, 59.0, 50)
    assert np.all(np.asarray(e["plus1sigma"](xs)) >= np.asarray(n(xs)))
    assert np.all(np.asarray(e["minus1sigma"](xs)) <= np.asarray(n(xs)))


def test_tabulated_efficiency_lar(data_dir):
    t = dt.load_efficiency_table(data_dir / "coherent_lar_2020" / "CENNS10AnlAEfficiency.txt")
    assert float(t(1.25)) == 0.031002 and float(t(39.75)) == 0.96345  # file rows (keVee)
    assert float(t(50.0)) == 0.96345  # COHERENT.md: use the last value above 40 keVee
    assert float(t(0.1)) == 0.0
    assert float(t(1.5)) == pytest.approx(0.5 * (0.031002 + 0.167881), rel=1e-14)


def test_efficiency_gradients():
    jax.test_util.check_grads(lambda a, k, x0: Coherent2017Efficiency(a, k, x0)(jnp.array([5.5, 10.5, 20.5])),
                              (0.6655, 0.4942, 10.8507), order=2, eps=1e-5, rtol=1e-4)
    jax.test_util.check_grads(lambda a, b, c, d: Coherent2021Efficiency(a, b, c, d)(jnp.array([8.0, 15.0, 40.0])),
                              (1.32045, 0.285979, 10.8646, -0.333322), order=1, eps=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------------------ Gaussian resolution


def test_ge_resolution_value():
    # DRESDEN_II.md: sigma = sqrt(sigma_n^2 + eta F E), sigma_n = 68.5 eV, F = 0.11, eta = 2.96 eV
    assert float(GeResolution()(1.0)) == pytest.approx(math.sqrt(0.0685**2 + 0.11 * 2.96e-3 * 1.0), rel=1e-15)
    assert float(GeResolution()(0.0)) == pytest.approx(0.0685, rel=1e-15)


def test_smearing_matrix_columns_and_scipy():
    res = GeResolution()
    E = jnp.linspace(0.2, 1.5, 27)
    edges = jnp.arange(-0.7, 2.4001, 0.01)  # covers E +- 10 sigma (sigma <= 0.072 keV) for all nodes
    M = rs.smearing_matrix(E, edges, res)
    assert M.shape == (edges.shape[0] - 1, E.shape[0])
    # tails beyond 10 sigma are 1.5e-23: columns sum to 1 to round-off of the CDF differences
    np.testing.assert_allclose(M.sum(axis=0), 1.0, rtol=0, atol=1e-13)
    s = np.sqrt(0.0685**2 + 0.11 * 2.96e-3 * np.asarray(E))
    ref = np.diff(stats.norm.cdf((np.asarray(edges)[:, None] - np.asarray(E)[None, :]) / s[None, :]), axis=0)
    np.testing.assert_allclose(M, ref, rtol=0, atol=1e-14)  # jax ndtr vs scipy: round-off


def test_smearing_truncated_at_zero():
    # later Dresden-II code: Gaussian renormalised to E_obs >= 0 -> columns over [0, inf) sum to 1
    E = jnp.array([0.0, 0.05, 0.3])
    edges = jnp.arange(0.0, 1.2001, 0.01)
    M = rs.smearing_matrix(E, edges, GeResolution(), renormalise_positive=True)
    np.testing.assert_allclose(M.sum(axis=0), 1.0, atol=1e-13)
    s0 = 0.0685
    assert float(M[0, 0]) == pytest.approx(2 * (stats.norm.cdf(0.01 / s0) - 0.5), rel=1e-12)


def test_resolution_gradients():
    E = jnp.array([0.2, 0.6, 1.3])
    edges = jnp.linspace(0.0, 1.6, 17)

    def f(sn, F, eps):
        return rs.smearing_matrix(E, edges, GeResolution(sn, F, eps))

    # per-argument step scaling: sigma_n ~ 0.07 keV, F ~ 0.1, eps_pair ~ 3e-3 keV
    jax.test_util.check_grads(jax.jit(lambda a, b, c: f(a * 0.01, b * 0.1, c * 1e-3)), (6.85, 1.1, 2.96), order=2,
                              eps=1e-4, rtol=1e-4)
    jax.test_util.check_grads(jax.jit(lambda s: rs.gaussian_bin_probabilities(s, E, edges)), (0.07,), order=2,
                              eps=1e-6, rtol=1e-4)


def test_resolution_no_nan_at_zero_width():
    def f(sn, E):
        return jnp.sum(rs.smearing_matrix(E, jnp.linspace(-0.1, 0.5, 13), GeResolution(sn, 0.11, 2.96e-3)) ** 2)

    vg = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    for sn in (0.0, 1e-12, 0.0685):
        for E in (jnp.array([0.0, 0.05]), jnp.array([-0.01, 0.1])):
            v, g = vg(sn, E)
            assert np.isfinite(float(v)) and np.isfinite(float(g[0])) and np.all(np.isfinite(np.asarray(g[1])))
    g = jax.grad(lambda s: jnp.sum(rs.gaussian_bin_probabilities(s, jnp.array([0.3]), jnp.array([0.0, 0.3, 1.0]))))(0.0)
    assert np.isfinite(float(g))


# ------------------------------------------------------------------------------------------ PE statistics


@pytest.mark.parametrize("mu", [1.0, 2.0, 5.0, 13.0, 40.0])
def test_poisson_matches_scipy_integer_means(mu):
    edges = jnp.arange(0.0, 121.0)  # unit bins [n, n+1)
    p = np.asarray(rs.poisson_pe_bin_probabilities(jnp.array(mu), edges))
    ref = stats.poisson.pmf(np.arange(120), mu)
    np.testing.assert_allclose(p, ref, rtol=1e-10, atol=1e-15)  # incomplete-gamma differences: ~1e-13 relative
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    # 2-PE bins [0,2), [2,4), ...
    p2 = np.asarray(rs.poisson_pe_bin_probabilities(jnp.array(mu), jnp.arange(0.0, 121.0, 2.0)))
    np.testing.assert_allclose(p2, ref[0::2] + ref[1::2], rtol=1e-10, atol=1e-15)


def test_poisson_gradient_analytic_and_check_grads():
    # d pmf(n; mu)/d mu = pmf(n-1) - pmf(n)
    mu = 7.0
    edges = jnp.arange(0.0, 30.0)
    J = jax.jacfwd(lambda m: rs.poisson_pe_bin_probabilities(m, edges))(mu)
    n = np.arange(29)
    ref = stats.poisson.pmf(n - 1, mu) - stats.poisson.pmf(n, mu)
    np.testing.assert_allclose(J, ref, rtol=1e-8, atol=1e-14)
    E_ee = jnp.array([0.2, 0.8, 2.5])  # keVee
    jax.test_util.check_grads(jax.jit(lambda ly: rs.pe_smearing_matrix(ly, E_ee, jnp.arange(0.0, 60.0, 2.0))), (13.348,),
                              order=2, eps=1e-4, rtol=1e-4)


def test_pe_matrix_and_no_nan():
    E = jnp.array([0.0, 0.5, 1.0])
    M = rs.pe_smearing_matrix(13.348, E, jnp.arange(0.0, 101.0))
    assert M.shape == (100, 3)
    np.testing.assert_allclose(M[:, 2], stats.poisson.pmf(np.arange(100), 13.348), rtol=1e-10, atol=1e-15)
    assert float(M[0, 0]) == pytest.approx(1.0, abs=1e-11)  # mean 0 -> all in the 0-PE bin (mean floored at 1e-12)
    for ly in (0.0, 13.348):
        g = jax.grad(lambda l: jnp.sum(rs.pe_smearing_matrix(l, E, jnp.arange(0.5, 20.0)) ** 2))(ly)
        assert np.isfinite(float(g))


def test_gamma_pe_matches_scipy():
    a, b = 0.0749, 9.56
    E = np.array([0.5, 1.5, 3.0])
    edges = np.arange(0.0, 80.0, 2.0)
    p = np.asarray(rs.gamma_pe_bin_probabilities(jnp.asarray(E), jnp.asarray(edges), a, b))
    shape = 1 + b * E
    rate = a * shape / E
    ref = np.diff(stats.gamma.cdf(edges[None, :], shape[:, None], scale=1.0 / rate[:, None]), axis=1)
    np.testing.assert_allclose(p, ref, rtol=1e-9, atol=1e-15)
    mean_pe = (p * (0.5 * (edges[1:] + edges[:-1]))).sum(axis=1) / p.sum(axis=1)
    np.testing.assert_allclose(mean_pe, E / a, rtol=0.02)  # mean 13.35 E PE; 2-PE binning shifts it by < 2 %
    jax.test_util.check_grads(lambda a, b: rs.gamma_pe_bin_probabilities(jnp.asarray(E), jnp.asarray(edges), a, b),
                              (a, b), order=1, eps=1e-6, rtol=1e-4)


# ------------------------------------------------------------------------------------------ arrival times


@pytest.mark.parametrize(
    "name,total,frac6",
    [
        # integral (sum of per-bin probabilities over 0-12 us) found in the files, and the t < 6 us fraction
        ("promptNeutrinos", 1.0, 1.0),  # bins above 6 us are exactly 0
        ("delayedNeutrinos", 1.0, 0.9147853019168916),  # COHERENT.md: ~0.91
        ("promptNeutrons", 0.9999999999999999, 1.0),
    ],
)
def test_arrival_time_pdfs(data_dir, name, total, frac6):
    pdf = dt.load_arrival_time_pdf(data_dir / "coherent_csi_2017" / f"arrivalTimePDF_{name}.txt")
    assert pdf.prob.shape == (24,)
    np.testing.assert_allclose(pdf.t_edges_us[[0, -1]], [0.0, 12.0], rtol=0, atol=1e-15)
    assert pdf.prob.sum() == pytest.approx(total, abs=2e-16)
    assert float(rs.time_window_fraction(pdf, 0.0, 12.0)) == pytest.approx(1.0, abs=1e-15)
    assert float(rs.time_window_fraction(pdf, 0.0, 6.0)) == pytest.approx(frac6, abs=1e-14)
    np.testing.assert_allclose(rs.time_bin_fractions(pdf, jnp.asarray(pdf.t_edges_us)), pdf.prob / pdf.prob.sum(),
                               rtol=1e-12, atol=1e-17)


def test_arrival_time_values_and_gradient(data_dir):
    pdf = dt.load_arrival_time_pdf(data_dir / "coherent_csi_2017" / "arrivalTimePDF_delayedNeutrinos.txt")
    assert pdf.prob[1] == 0.11920610759230026  # file row 2 (0.75 us)
    # half of the 0.5-1.0 us bin (uniform within a bin)
    assert float(rs.time_window_fraction(pdf, 0.5, 0.75)) == pytest.approx(0.5 * 0.11920610759230026, rel=1e-12)
    # d/dt_hi of the window fraction = density = prob/width inside a bin
    g = jax.grad(lambda t: rs.time_window_fraction(pdf, 0.0, t))(0.8)
    assert float(g) == pytest.approx(0.11920610759230026 / 0.5, rel=1e-12)


def test_arrival_time_malformed(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("0.25, 0.5\n0.75, 0.3\n1.5, 0.2\n")
    with pytest.raises(ValueError, match="equally spaced"):
        dt.load_arrival_time_pdf(p)
    p.write_text("0.25, 0.5\n0.75, x\n")
    with pytest.raises(ValueError, match=re.escape(f"{p}:2: column 2 ('probability'): 'x' is not a number")):
        dt.load_arrival_time_pdf(p)
    p.write_text("0.25, 0.5, 1\n")
    with pytest.raises(ValueError, match=re.escape(f"{p}:1: expected 2 columns (t_us, probability) separated by "
                                                 "commas, semicolons or whitespace, found 3")):
        dt.load_arrival_time_pdf(p)


def test_coherent_2021_time_efficiency():
    t = jnp.array([0.1, 0.52, 3.0, 5.99, 6.0])
    ref = [1.0, 1.0, math.exp(-0.0494 * 2.48), math.exp(-0.0494 * 5.47), 0.0]
    np.testing.assert_allclose(rs.coherent_2021_time_efficiency(t), ref, rtol=1e-14)


# ------------------------------------------------------------------------------------------ float32 / jit


def test_float32_path():
    with jax.enable_x64(False):
        E = jnp.linspace(0.2, 1.5, 14, dtype=jnp.float32)
        edges = jnp.arange(-0.7, 2.4001, 0.01, dtype=jnp.float32)
        M = rs.smearing_matrix(E, edges, GeResolution())
        assert M.dtype == jnp.float32
        np.testing.assert_allclose(M.sum(axis=0), 1.0, atol=1e-5)  # float32 CDF differences, ~300 bins
        p = rs.poisson_pe_bin_probabilities(jnp.float32(13.0), jnp.arange(0.0, 60.0, dtype=jnp.float32))
        assert p.dtype == jnp.float32
        # float32 gammaincc is good to a few ulp of the CDF (~0.5): differences carry ~5e-6 absolute
        np.testing.assert_allclose(p, stats.poisson.pmf(np.arange(59), 13.0), atol=1e-5)
        g = jax.grad(lambda s: jnp.sum(rs.smearing_matrix(E, edges, GeResolution(s)) ** 2))(jnp.float32(0.0))
        assert np.isfinite(float(g))
        eff = Coherent2017Efficiency()(jnp.asarray([10.5], jnp.float32))
        assert eff.dtype == jnp.float32 and float(eff[0]) == pytest.approx(_eff2017_ref(10.5), rel=1e-6)


def test_jit_no_retrace():
    traces = []

    @jax.jit
    def f(res, E):
        traces.append(1)
        return rs.smearing_matrix(E, jnp.linspace(0.0, 2.0, 21), res)

    E = jnp.array([0.5, 1.0])
    f(GeResolution(), E)
    f(GeResolution(0.05, 0.12, 3e-3), E)
    assert len(traces) == 1
