"""Unfolding the reactor antineutrino spectrum from a CEvNS recoil spectrum (also below the IBD threshold).

Liao, Liu, Marfatia, PRD 108 (2023) [arXiv:2302.10460]; the estimators follow Cowan, *Statistical Data
Analysis* (1998), ch. 11 (Tikhonov regularisation, bias estimator and the beta criterion).

Model (2302.10460 eq. "mu = R nu + h + b")::

    mu_j = sum_i R[j, i] nu_i + h_j + b_j

* ``nu_i`` [nu-bar / (MeV fission)]: the per-fission spectrum averaged over neutrino-energy bin i
  (the unit of the Kopeikin/Huber tables, so beta has the meaning of the paper);
* ``R[j, i]`` [counts per unit nu_i] = t N_T (P / eps_f) / (4 pi d^2) * eff_j * int_{bin j} dE_R
  int_{bin i} dE_nu dsigma/dE_R, from the binned-flux kernels of :mod:`cevnsjax.rates`;
* ``h_j``: counts from the flux above the unfolded range (taken as known, e.g. from IBD), ``b_j``:
  background counts.

Estimators (pure JAX, vmapped over beta and over toys)::

    chi2(nu) = (n - mu)^T V^-1 (n - mu),     V = diag(n)  (the talk's chi^2, Neyman; zeros -> 1)
    S(nu)    = sum_i (-nu_i + 2 nu_{i+1} - nu_{i+2})^2 = nu^T G nu
    D nu = K,  D = 2 (R^T V^-1 R + beta G),  K = 2 R^T V^-1 (n - h - b)      -> nu_hat = D^-1 K
    C = d nu_hat / d n   (jax.jacfwd; closed form C = A^-1 R^T V^-1 diag(1 - r/n), r = n - mu_hat)
    U = C V C^T          (covariance of nu_hat)
    b_hat = C (mu_hat - n),  W = (C R C - C) V (C R C - C)^T,  B = sum_i b_hat_i^2 / W_ii

beta selection: the *physical criterion* (smallest beta giving nu_hat > 0 in every bin) and Cowan's
criterion (lower beta until the toy-averaged B is ~ m, the number of bins).

Scenarios (the talk / 2302.10460): NUCLEUS-like Ge cryogenic calorimeter (nuclear recoils, no
quenching) at the Chooz Very-Near-Site, 72 m and 102 m from two 4.25 GW_th cores (NUCLEUS
EPJC 79, 1018 [1905.10258]), represented as one 4.25 GW core at d_eff = (72^-2 + 102^-2)^-1/2 = 58.8 m.

1. 1 kg yr, 100 counts/(keV kg day), threshold 5 eV;  2. 3 kg yr, 1 count/(keV kg day), 5 eV;
3. 300 kg yr, 1 count/(keV kg day), 1 eV.

The Bayesian alternative (flux-bin amplitudes with a Gaussian smoothness prior whose strength is
sampled) is :func:`bayesian_model`; it needs numpyro, imported only when called.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cevnsjax.physics.nuclei import Target
from cevnsjax.physics.params import PhysicsParams
from cevnsjax.physics.xsec import E_nu_min, E_R_max
from cevnsjax.rates import binned_rate, prepare
from cevnsjax.results import ArrayRecord, BetaScan, UnfoldingResult
from cevnsjax.sources.base import ContinuousComponent, LineComponent, Source, geometric_factor_cm2
from cevnsjax.sources.binned import BinnedFlux
from cevnsjax.stats._linalg import cholesky_factor, cholesky_solve

__all__ = [
    "Scenario", "SCENARIOS", "DEFAULT_BETA_RANGE", "UnfoldingProblem", "BetaScan", "UnfoldingResult",
    "second_difference_matrix", "recoil_edges_for", "response_matrix", "build_problem",
    "tikhonov_estimate", "estimator_jacobian_closed_form", "unfold", "unfold_statistics",
    "beta_scan", "physical_beta", "bias_criterion_beta", "toy_data", "run_unfolding", "bayesian_model",
    "DEFAULT_TOY_CHUNK", "ensemble_toys", "toy_chunk", "toy_chunk_file", "toy_manifest", "run_toy_chunks",
    "toy_ensemble",
]

DAYS_PER_YEAR = 365.25
#: Chooz Very-Near-Site: 4.25 GW_th per core at 72 m and 102 m (NUCLEUS EPJC 79, 1018) -> one core at d_eff.
CHOOZ_POWER_GW = 4.25
CHOOZ_D_EFF_M = (72.0**-2 + 102.0**-2) ** -0.5  # = 58.82 m


# --------------------------------------------------------------------------- scenarios
#: Default beta grid [(nu/(MeV fission))^-2, with the Neyman chi^2 of the talk]. Its bottom must lie where
#: nearly every toy of the normal unfolding still has a negative bin, else the physical criterion is set by
#: the grid instead of the data: at 1e-4 scenario 3 is already smoothed to a separation z = 4.8 between the
#: flux with and without capture (every toy positive); at 1e-8 only 0.8 % of its toys are positive.
DEFAULT_BETA_RANGE = (1e-8, 1e4)

@dataclass(frozen=True)
class Scenario:
    """A NUCLEUS-like measurement: exposure [kg yr], flat background [counts/(keV kg day)], threshold [eV].

    The unfolded range is ``n_bins`` equal neutrino-energy bins from E_nu,min(threshold) (for the mean
    target mass) to ``e_nu_max_MeV`` (1.8 MeV: the IBD threshold; above it the flux is known and enters
    as ``h``). Recoil bins are the images E_R,max(E_nu edges), so R is square and (nearly) triangular.
    """

    name: str
    exposure_kg_yr: float
    background_ckkd: float
    threshold_eV: float
    target: str = "Ge"
    power_gw: float = CHOOZ_POWER_GW
    distance_m: float = CHOOZ_D_EFF_M
    efficiency: float = 1.0
    e_nu_max_MeV: float = 1.8
    n_bins: int = 10

    @property
    def exposure_kg_day(self) -> float:
        return self.exposure_kg_yr * DAYS_PER_YEAR


SCENARIOS = {
    1: Scenario("scenario1", 1.0, 100.0, 5.0),
    2: Scenario("scenario2", 3.0, 1.0, 5.0),
    3: Scenario("scenario3", 300.0, 1.0, 1.0),
}


def _scenario(s) -> Scenario:
    if isinstance(s, Scenario):
        return s
    key = int(str(s).replace("scenario", "")) if str(s).replace("scenario", "").isdigit() else s
    if key not in SCENARIOS:
        raise ValueError(f"scenario={s!r} is not known; use 1, 2, 3 or a Scenario(...)")
    return SCENARIOS[key]


# --------------------------------------------------------------------------- containers
@dataclass(frozen=True)
class UnfoldingProblem(ArrayRecord):
    """Everything the estimators need. Arrays: ``R`` (m_obs, m) counts per nu/(MeV fission); ``h``, ``b``,
    ``mu_true`` (m_obs,) counts; ``nu_true`` (m,) nu/(MeV fission); ``nu_edges_MeV`` (m+1,);
    ``recoil_edges_keV`` (m_obs+1,). ``mu_true`` is the expectation from the true (unbinned) spectrum,
    which differs from R nu_true + h + b by the within-bin shape."""

    R: np.ndarray
    h: np.ndarray
    b: np.ndarray
    mu_true: np.ndarray
    nu_true: np.ndarray
    nu_edges_MeV: np.ndarray
    recoil_edges_keV: np.ndarray
    name: str = "problem"

    @property
    def m(self) -> int:
        return int(np.shape(self.R)[1])

    @property
    def widths_MeV(self) -> np.ndarray:
        return np.diff(np.asarray(self.nu_edges_MeV))

    def asimov(self, exact: bool = True) -> np.ndarray:
        """Asimov data: R nu_true + h + b (``exact``, closes exactly) or the unbinned truth ``mu_true``."""
        return np.asarray(self.R) @ np.asarray(self.nu_true) + self.h + self.b if exact else np.asarray(self.mu_true)


# --------------------------------------------------------------------------- response matrix
def second_difference_matrix(m: int) -> np.ndarray:
    """L (m-2, m) with rows (-1, 2, -1): S(nu) = |L nu|^2, G = L^T L (2302.10460, Tikhonov)."""
    if m < 3:
        raise ValueError(f"m={m}: the second-difference regulariser needs >= 3 neutrino-energy bins")
    L = np.zeros((m - 2, m))
    idx = np.arange(m - 2)
    L[idx, idx], L[idx, idx + 1], L[idx, idx + 2] = -1.0, 2.0, -1.0
    return L


def _mean_mass(target: Target) -> float:
    return float(np.sum(target.mass_MeV * np.asarray([i.abundance for i in target.isotopes])) /
                 np.sum([i.abundance for i in target.isotopes]))


def recoil_edges_for(target: Target | str, nu_edges_MeV) -> np.ndarray:
    """Recoil edges [keV] = E_R,max(E_nu edges) for the abundance-weighted mean nuclear mass."""
    target = Target.from_formula(target) if isinstance(target, str) else target
    return np.asarray(E_R_max(np.asarray(nu_edges_MeV, float), _mean_mass(target))) * 1e3


def _check_edges(name, edges, unit):
    e = np.asarray(edges, float)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0) or e[0] < 0:
        raise ValueError(f"{name} must be >= 2 finite, non-negative, strictly increasing values in {unit}, got {e}")
    return e


def _nonneg(name, v, unit):
    v = float(v)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name}={v!r} {unit} must be finite and >= 0")
    return v


def response_matrix(target: Target | str, nu_edges_MeV, recoil_edges_keV, exposure_kg_day: float, *,
                    flux_per_unit: float, efficiency=1.0, threshold_keV: float | None = None,
                    params: PhysicsParams | None = None) -> np.ndarray:
    """R[j, i]: counts in recoil bin j per unit per-fission spectrum nu_i [nu/(MeV fission)] in bin i.

    ``flux_per_unit`` [cm^-2 s^-1 per nu/(MeV fission)] = fissions/s / (4 pi d^2) = P/(eps_f 4 pi d^2);
    ``efficiency``: scalar or one value per recoil bin; ``threshold_keV``: recoil bins must lie above it.
    2302.10460: R_ji = t N_T P/(4 pi d^2 eps_f) int_j dE_R int_i dE_nu dsigma/dE_R.
    """
    nu_e = _check_edges("nu_edges_MeV", nu_edges_MeV, "MeV")
    er_e = _check_edges("recoil_edges_keV", recoil_edges_keV, "keV")
    if not (math.isfinite(float(exposure_kg_day)) and float(exposure_kg_day) > 0):
        raise ValueError(f"exposure_kg_day={exposure_kg_day!r} must be finite and > 0 (kg day)")
    if not (math.isfinite(float(flux_per_unit)) and float(flux_per_unit) > 0):
        raise ValueError(f"flux_per_unit={flux_per_unit!r} cm^-2 s^-1 per nu/(MeV fission) must be > 0")
    eff = np.broadcast_to(np.asarray(efficiency, float), (er_e.size - 1,))
    if np.any(eff < 0) or np.any(eff > 1) or not np.all(np.isfinite(eff)):
        raise ValueError(f"efficiency must lie in [0, 1] (scalar or one per recoil bin), got {eff}")
    if threshold_keV is not None and er_e[0] < float(threshold_keV) * (1 - 1e-9):
        raise ValueError(f"recoil bins start at {er_e[0]:.4g} keV, below the threshold {threshold_keV} keV")
    target = Target.from_formula(target) if isinstance(target, str) else target
    top = float(np.max(E_R_max(nu_e[-1], np.asarray(target.mass_MeV)))) * 1e3
    if er_e[0] >= top:
        raise ValueError(f"all recoil bins lie above E_R,max = {top:.4g} keV of the top neutrino edge "
                         f"{nu_e[-1]} MeV: no neutrino bin can populate them")
    flux = BinnedFlux(tuple(nu_e), tuple([float(flux_per_unit)] * (nu_e.size - 1)))
    k = prepare(target, flux, bin_edges_keV=er_e)
    rate = np.asarray(binned_rate(params or PhysicsParams(), k, by="component"))  # (m, m_obs) events/(kg day)
    return (rate * float(exposure_kg_day) * eff[None, :]).T


class _WindowSource(Source):
    """The continuous components of ``source`` restricted to lo <= E < hi [MeV]."""

    def __init__(self, source: Source, lo: float, hi: float):
        self.source, self.lo, self.hi = source, float(lo), float(hi)

    def components(self):
        out = []
        for c in self.source.components():
            if isinstance(c, LineComponent):
                if self.lo <= c.energy < self.hi:
                    out.append(c)
                continue
            bp = np.asarray(c.breakpoints, float)
            a, b = max(bp[0], self.lo), min(bp[-1], self.hi)
            if b <= a:
                continue
            bp = np.unique(np.concatenate([[a, b], bp[(bp > a) & (bp < b)]]))
            dens = (lambda d, lo, hi: lambda E: np.where((E >= lo) & (E < hi), d(E), 0.0))(c.density, a, b)
            out.append(ContinuousComponent(c.name, c.flavour, c.antineutrino, dens, tuple(bp), c.max_step))
        return tuple(out)


def _reactor_truth(data_dir, scenario: Scenario, capture: bool):
    from cevnsjax.sources.reactor import Reactor

    if data_dir is None:
        raise FileNotFoundError(
            "the published-data folder was not found (set $CEVNSJAX_DATA, default ../shared/data): the reactor "
            "flux below 2 MeV and the 239U/239Np capture spectra are read from it"
        )
    return Reactor.with_low_energy_tables(data_dir, scenario.power_gw, scenario.distance_m,
                                          capture="bestiole" if capture else None)


def build_problem(scenario=1, *, data_dir=None, source: Source | None = None, capture: bool = True,
                  nu_edges_MeV=None, params: PhysicsParams | None = None) -> UnfoldingProblem:
    """R, h, b, the true binned flux and mu_true of a scenario.

    Truth: ``source`` if given (its ``fissions_per_second()`` and ``distance_m`` define the per-fission unit
    when present, else the scenario's power with 200 MeV/fission is NOT assumed: pass a Reactor), else the
    full reactor of :meth:`Reactor.with_low_energy_tables` from ``data_dir`` (with the 238U(n,gamma) capture
    branch unless ``capture=False``).
    """
    sc = _scenario(scenario)
    if not (math.isfinite(sc.exposure_kg_yr) and sc.exposure_kg_yr > 0):
        raise ValueError(f"{sc.name}: exposure_kg_yr={sc.exposure_kg_yr!r} must be > 0 (kg yr)")
    _nonneg("background_ckkd", sc.background_ckkd, "counts/(keV kg day)")
    if not (sc.threshold_eV > 0):
        raise ValueError(f"{sc.name}: threshold_eV={sc.threshold_eV!r} must be > 0")
    src = source if source is not None else _reactor_truth(data_dir, sc, capture)
    if not hasattr(src, "fissions_per_second"):
        raise ValueError("source must be a Reactor (its fissions per second and distance define nu [nu/(MeV fission)])")
    per_unit = src.fissions_per_second() * geometric_factor_cm2(src.distance_m)
    target = Target.from_formula(sc.target)
    M = _mean_mass(target)
    if nu_edges_MeV is None:
        lo = float(E_nu_min(sc.threshold_eV * 1e-6, M, xp=np))
        nu_edges_MeV = np.linspace(lo, sc.e_nu_max_MeV, sc.n_bins + 1)
    nu_e = _check_edges("nu_edges_MeV", nu_edges_MeV, "MeV")
    comps = src.components()
    f_lo = min(c.breakpoints[0] for c in comps if isinstance(c, ContinuousComponent))
    f_hi = max(c.breakpoints[-1] for c in comps if isinstance(c, ContinuousComponent))
    if nu_e[0] < f_lo or nu_e[-1] > f_hi:
        raise ValueError(f"neutrino bins [{nu_e[0]:.4g}, {nu_e[-1]:.4g}] MeV lie outside the flux range "
                         f"[{f_lo:.4g}, {f_hi:.4g}] MeV of the source")
    er_e = recoil_edges_for(target, nu_e)
    thr_keV = sc.threshold_eV * 1e-3
    er_e[0] = max(er_e[0], thr_keV)
    expo = sc.exposure_kg_day
    R = response_matrix(target, nu_e, er_e, expo, flux_per_unit=per_unit, efficiency=sc.efficiency,
                        threshold_keV=thr_keV, params=params)
    p = params or PhysicsParams()
    rate_of = lambda s: np.asarray(binned_rate(p, prepare(target, s, bin_edges_keV=er_e))) * expo * sc.efficiency
    h = rate_of(_WindowSource(src, nu_e[-1], np.inf))
    sig = rate_of(_WindowSource(src, 0.0, nu_e[-1]))
    b = sc.background_ckkd * np.diff(er_e) * expo
    nu_true = np.asarray(BinnedFlux.from_source(src, nu_e).amplitudes) / per_unit
    return UnfoldingProblem(R=R, h=h, b=b, mu_true=sig + h + b, nu_true=nu_true, nu_edges_MeV=nu_e,
                            recoil_edges_keV=er_e, name=sc.name)


# --------------------------------------------------------------------------- estimators (pure JAX)
def _variance(n, v_ref):
    """V = diag(n) (Neyman chi^2 of the talk), zeros replaced by 1; or the fixed ``v_ref`` when given."""
    return jnp.maximum(n, 1.0) if v_ref is None else v_ref


def _factor(R, n, beta, L, v_ref):
    """Column-equilibrated A = R^T V^-1 R + beta L^T L (A_s = S A S, S = 1/|col|)."""
    V = _variance(n, v_ref)
    Rw = R / jnp.sqrt(V)[:, None]
    sc = 1.0 / jnp.sqrt(jnp.sum(Rw**2, axis=0) + beta * jnp.sum(L**2, axis=0))
    A = (Rw.T @ Rw + beta * (L.T @ L)) * sc[:, None] * sc[None, :]
    return V, sc, A


def tikhonov_estimate(R, h, b, n, beta, L, v_ref=None, refine: int = 2):
    """nu_hat = D^-1 K, D = 2(R^T V^-1 R + beta L^T L), K = 2 R^T V^-1 (n - h - b) (2302.10460; Cowan 11.5).

    ``L``: second-difference matrix (m-2, m), S(nu) = |L nu|^2. Batched solve of the equilibrated
    normal matrix plus ``refine`` steps of iterative refinement on the least-squares residual (R is
    ~1e7-conditioned; refinement restores ~1e-10 relative accuracy). Pure JAX; vmap over beta and n.
    """
    V, sc, cf = _factor(R, n, beta, L, v_ref)
    y = n - h - b
    grad = lambda nu: R.T @ ((y - R @ nu) / V) - beta * (L.T @ (L @ nu))
    nu = jnp.zeros(R.shape[1], R.dtype)
    Lc = cholesky_factor(cf)
    for _ in range(1 + refine):
        nu = nu + sc * cholesky_solve(cf, sc * grad(nu), Lc)
    return nu


def estimator_jacobian_closed_form(R, h, b, n, beta, L, v_ref=None):
    """C = d nu_hat/d n in closed form: A^-1 R^T V^-1 diag(1 - r/n), A = R^T V^-1 R + beta L^T L,
    r = n - mu_hat, for V = diag(n) (derived by differentiating A nu_hat = R^T V^-1 (n-h-b));
    A^-1 R^T V^-1 for a fixed V. Computed with numpy (float64 SVD-based solve), independent of the AD path."""
    R, h, b, n, L = (np.asarray(x, float) for x in (R, h, b, n, L))
    V = np.maximum(n, 1.0) if v_ref is None else np.asarray(v_ref, float)
    M = np.vstack([R / np.sqrt(V)[:, None], np.sqrt(beta) * L])
    pinv = np.linalg.pinv(M, rcond=1e-15)  # A^-1 M^T
    nu = pinv[:, : R.shape[0]] @ ((n - h - b) / np.sqrt(V))
    fac = np.where(n > 1.0, 1.0 - (n - h - b - R @ nu) / V, 1.0) if v_ref is None else np.ones_like(n)
    return pinv[:, : R.shape[0]] * (fac / np.sqrt(V))[None, :]


def unfold_statistics(R, h, b, n, beta, L, v_ref=None, v_cov=None):
    """nu_hat, C (by jax.jacfwd), U = C V C^T, b_hat = C(mu_hat - n), W = (CRC - C) V (CRC - C)^T, B.

    Formulas: Cowan ch. 11 as used in 2302.10460. ``v_cov`` (default: the V of the chi^2) is the
    covariance of n used in U and W. Returns a dict of arrays; pure JAX (vmap over beta and n).
    """
    est = lambda nn: tikhonov_estimate(R, h, b, nn, beta, L, v_ref)
    nu = est(n)
    C = jax.jacfwd(est)(n)
    V = _variance(n, v_ref) if v_cov is None else v_cov
    U = (C * V[None, :]) @ C.T
    mu_hat = R @ nu + h + b
    bhat = C @ (mu_hat - n)
    M = C @ R @ C - C
    W = (M * V[None, :]) @ M.T
    Wd = jnp.diag(W)
    B = jnp.sum(jnp.where(Wd > 0, bhat**2 / jnp.where(Wd > 0, Wd, 1.0), 0.0))
    return {"nu_hat": nu, "C": C, "U": U, "b_hat": bhat, "W": W, "B": B}


@partial(jax.jit, static_argnames=("keep",))
def _scan_core(R, h, b, n_toys, betas, L, nu_true, n_ref, keep=("nu_hat", "B", "U")):
    """vmap over beta (outer) and toys (inner): returns nu_hat (nb, T, m), B (nb, T); reference figures."""
    def one(n, beta):
        s = unfold_statistics(R, h, b, n, beta, L)
        return s["nu_hat"], s["B"]

    per_beta = jax.vmap(lambda beta: jax.vmap(lambda n: one(n, beta))(n_toys))
    nu, B = per_beta(betas)
    ref = jax.vmap(lambda beta: unfold_statistics(R, h, b, n_ref, beta, L))(betas)
    return nu, B, ref["nu_hat"], ref["B"], ref["U"]


def _check_solvable(R, beta_min, m):
    R = np.asarray(R)
    if R.ndim != 2 or R.shape[0] < R.shape[1]:
        raise ValueError(f"R has shape {R.shape}; need at least as many recoil bins as neutrino bins")
    if beta_min <= 0:
        s = np.linalg.svd(R, compute_uv=False)
        if s[-1] <= s[0] * 1e-12:
            raise ValueError(
                f"R is singular (condition number {s[0] / max(s[-1], 1e-300):.3g}) and beta = 0: normal unfolding "
                "(inverse / least squares) needs a full-rank R; use beta > 0 (Tikhonov) or fewer neutrino bins"
            )


def unfold(problem: UnfoldingProblem, n, beta: float = 0.0, *, statistics: bool = True):
    """Tikhonov (beta > 0) or normal (beta = 0: least squares, = R^-1 (n-h-b) for square R) unfolding.

    Returns the dict of :func:`unfold_statistics` (numpy arrays) or just nu_hat.
    """
    beta = float(beta)
    if not (math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta={beta!r} must be finite and >= 0")
    n = np.asarray(n, float)
    if n.shape != np.shape(problem.h):
        raise ValueError(f"data n has shape {n.shape}; expected one count per recoil bin {np.shape(problem.h)}")
    _check_solvable(problem.R, beta, problem.m)
    L = jnp.asarray(second_difference_matrix(problem.m))
    args = [jnp.asarray(x) for x in (problem.R, problem.h, problem.b, n)]
    if not statistics:
        return np.asarray(tikhonov_estimate(*args, beta, L))
    return {k: np.asarray(v) for k, v in unfold_statistics(*args, beta, L).items()}


def toy_data(problem: UnfoldingProblem, n_toys: int, seed: int = 0, exact: bool = False) -> np.ndarray:
    """Poisson pseudo-data (n_toys, m_obs) around ``mu_true`` (or R nu_true + h + b if ``exact``)."""
    mu = jnp.asarray(problem.asimov(exact))
    return np.asarray(jax.random.poisson(jax.random.PRNGKey(seed), mu, shape=(int(n_toys), mu.size)), float)


def physical_beta(betas, nu_hat) -> np.ndarray:
    """Physical criterion (2302.10460): the smallest beta with nu_hat > 0 in every bin.

    Decided per toy (each toy is one possible observed data set: on Asimov data the normal unfolding is
    trivially positive). The grid must start where (nearly) no toy is positive yet (see DEFAULT_BETA_RANGE).

    ``nu_hat`` (nb, ..., m) over ascending ``betas``; returns (...) betas (inf where none is positive)."""
    betas = np.asarray(betas)
    pos = np.all(np.asarray(nu_hat) > 0, axis=-1)  # (nb, ...)
    first = np.argmax(pos, axis=0)
    return np.where(np.any(pos, axis=0), betas[first], np.inf)


def bias_criterion_beta(betas, B_mean, m: int) -> float:
    """Cowan's criterion: lower beta until the toy-averaged B is ~ m, i.e. the largest beta with
    B_mean <= m + sqrt(2 m) (one standard deviation of a chi^2 with m degrees of freedom)."""
    ok = np.asarray(B_mean) <= m + math.sqrt(2 * m)
    return float(np.asarray(betas)[ok][-1]) if np.any(ok) else float("nan")


def beta_scan(problem: UnfoldingProblem, betas, toys, n_ref=None):
    """Unfold every toy at every beta (one jit call, vmapped). Returns (BetaScan, nu_hat (nb, T, m), B (nb, T))."""
    betas = np.asarray(betas, float)
    if betas.ndim != 1 or np.any(~np.isfinite(betas)) or np.any(betas < 0) or np.any(np.diff(betas) <= 0):
        raise ValueError("betas must be a 1-D strictly increasing array of finite values >= 0")
    _check_solvable(problem.R, betas[0], problem.m)
    toys = np.asarray(toys, float)
    n_ref = problem.asimov(True) if n_ref is None else np.asarray(n_ref, float)
    L = second_difference_matrix(problem.m)
    nu, B, nu_ref, B_ref, U_ref = _scan_core(jnp.asarray(problem.R), jnp.asarray(problem.h), jnp.asarray(problem.b),
                                             jnp.asarray(toys), jnp.asarray(betas), jnp.asarray(L),
                                             jnp.asarray(problem.nu_true), jnp.asarray(n_ref))
    nu, B = np.asarray(nu), np.asarray(B)
    return _scan_figures(problem, betas, nu, B, B_ref, U_ref), nu, B


def _scan_figures(problem, betas, nu, B, B_ref, U_ref) -> BetaScan:
    return BetaScan(
        betas=betas,
        variance=np.trace(np.asarray(U_ref), axis1=1, axis2=2),
        variance_toys=np.var(nu, axis=1).sum(-1),
        bias_B=np.asarray(B_ref),
        bias_B_mean=B.mean(axis=1),
        bias_sq=((nu.mean(axis=1) - np.asarray(problem.nu_true)) ** 2).sum(-1),
        positive_fraction=np.all(nu > 0, axis=-1).mean(axis=1),
    )


# --------------------------------------------------------------------------- the toy ensemble, in chunks
#: Toys per chunk (one jitted call, one checkpoint file, one Dask task each).
DEFAULT_TOY_CHUNK = 100
TOY_MANIFEST_VERSION = 1


@jax.jit
def _toy_core(R, h, b, toys, betas, L):
    """nu_hat (nb, T, m) and B (nb, T) of the toys (T, m_obs) at every beta (vmap over beta, then toys)."""
    def one(n, beta):
        s = unfold_statistics(R, h, b, n, beta, L)
        return s["nu_hat"], s["B"]

    return jax.vmap(lambda beta: jax.vmap(lambda n: one(n, beta))(toys))(betas)


@jax.jit
def _ref_core(R, h, b, n_ref, betas, L):
    """B (nb,) and U (nb, m, m) of the reference data at every beta."""
    ref = jax.vmap(lambda beta: unfold_statistics(R, h, b, n_ref, beta, L))(betas)
    return ref["B"], ref["U"]


def _jnp_problem(problem: UnfoldingProblem):
    L = second_difference_matrix(problem.m)
    return [jnp.asarray(x) for x in (problem.R, problem.h, problem.b)] + [jnp.asarray(L)]


def ensemble_toys(problem: UnfoldingProblem, seed: int, start: int, stop: int, exact: bool = False) -> np.ndarray:
    """Toys ``start..stop-1`` (rows, counts per recoil bin) of the ensemble of run seed ``seed``: toy i is a
    Poisson draw around ``mu_true`` (or R nu_true + h + b if ``exact``) with its own key
    ``fold_in(PRNGKey(seed + 1), i)``, so a toy depends neither on the chunk size nor on the order or the
    process in which chunks run."""
    mu = jnp.asarray(problem.asimov(exact))
    base = jax.random.PRNGKey(int(seed) + 1)
    idx = jnp.arange(int(start), int(stop))
    return np.asarray(jax.vmap(lambda i: jax.random.poisson(jax.random.fold_in(base, i), mu))(idx), float)


def _chunk_bounds(k: int, chunk_size: int, n_toys: int) -> tuple[int, int]:
    start = int(k) * int(chunk_size)
    if not 0 <= start < int(n_toys):
        raise ValueError(f"toy chunk {k} does not exist: {n_toys} toys in chunks of {chunk_size}")
    return start, min(start + int(chunk_size), int(n_toys))


def toy_chunk(problem: UnfoldingProblem, betas, seed: int, k: int, *, chunk_size: int = DEFAULT_TOY_CHUNK,
              n_toys: int) -> dict:
    """Chunk ``k`` of the toy ensemble, a pure function of its arguments: toys [k c, min((k+1) c, n_toys))
    (c = ``chunk_size``) and their unfoldings at every beta. Returns ``toys`` (c', m_obs) counts,
    ``nu_hat`` (nb, c', m) nu/(MeV fission) and ``B`` (nb, c'). Every chunk is computed with c toys (the
    last one padded with the following toys and cut), so one compilation serves all chunks."""
    start, stop = _chunk_bounds(k, chunk_size, n_toys)
    toys = ensemble_toys(problem, seed, start, start + int(chunk_size))
    R, h, b, L = _jnp_problem(problem)
    nu, B = _toy_core(R, h, b, jnp.asarray(toys), jnp.asarray(np.asarray(betas, float)), L)
    c = stop - start
    return {"toys": toys[:c], "nu_hat": np.asarray(nu)[:, :c], "B": np.asarray(B)[:, :c]}


def toy_manifest(problem: UnfoldingProblem, betas, n_toys: int, seed: int, chunk_size: int) -> dict:
    """What identifies a toy ensemble (``manifest.json`` beside the chunk files): the problem's arrays
    (sha256), the beta grid, the number of toys, the seed, the chunk size and the float precision."""
    h = hashlib.sha256()
    for x in (problem.R, problem.h, problem.b, problem.mu_true, problem.nu_true, problem.nu_edges_MeV):
        h.update(np.ascontiguousarray(np.asarray(x, np.float64)).tobytes())
    n_toys, chunk_size = int(n_toys), int(chunk_size)
    return dict(kind="unfolding_toys", version=TOY_MANIFEST_VERSION, problem=problem.name,
                problem_sha256=h.hexdigest(), betas=np.asarray(betas, float).tolist(), n_toys=n_toys,
                seed=int(seed), chunk=chunk_size, n_chunks=-(-n_toys // chunk_size),
                dtype=str(jnp.asarray(0.0).dtype))


def toy_chunk_file(out, k: int) -> Path:
    """The file of toy chunk ``k`` in the output folder ``out``."""
    return Path(out) / "chunks" / f"chunk_{int(k):06d}.npz"


def run_toy_chunks(problem: UnfoldingProblem, betas, n_toys: int, seed: int, chunks, *,
                   chunk_size: int = DEFAULT_TOY_CHUNK, out_dir=None) -> dict:
    """Compute the toy chunks ``chunks`` (indices). With ``out_dir``: only those without a file, each written
    atomically to ``out_dir/chunks/chunk_NNNNNN.npz`` as soon as it is done (what a Dask task runs);
    returns {k: arrays} of the chunks computed here."""
    from cevnsjax.io.outdir import atomic_write_bytes

    done = {}
    for k in chunks:
        path = toy_chunk_file(out_dir, k) if out_dir is not None else None
        if path is not None and path.exists():
            continue
        arrays = toy_chunk(problem, betas, seed, int(k), chunk_size=chunk_size, n_toys=n_toys)
        if path is not None:
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, buf.getvalue())
        done[int(k)] = arrays
    return done


def toy_ensemble(problem: UnfoldingProblem, betas, n_toys: int, seed: int = 0, *,
                 chunk_size: int = DEFAULT_TOY_CHUNK, out_dir=None, resume: bool = True, client=None,
                 progress: bool = False):
    """The toy ensemble of :func:`run_unfolding` in chunks of ``chunk_size`` toys (see :func:`toy_chunk`).

    ``out_dir``: a folder for ``manifest.json`` and the chunk files; with ``resume`` the chunks already
    there (same manifest, else a ValueError) are read back instead of recomputed, with ``resume=False``
    they are discarded. ``client``: a ``dask.distributed.Client``: every missing chunk is a Dask task
    (needs ``out_dir``, a folder every worker can write; :mod:`cevnsjax.stats.distributed`). The result
    does not depend on where and in which order the chunks ran: in-process, resumed and Dask ensembles are
    equal bit for bit. Returns (toys (T, m_obs), nu_hat (nb, T, m), B (nb, T))."""
    from cevnsjax.io.outdir import atomic_write_json

    betas = np.asarray(betas, float)
    n_toys, chunk_size = int(n_toys), int(chunk_size)
    if n_toys < 1 or chunk_size < 1:
        raise ValueError(f"n_toys={n_toys}, chunk_size={chunk_size}: both must be >= 1")
    manifest = toy_manifest(problem, betas, n_toys, seed, chunk_size)
    n_chunks = manifest["n_chunks"]
    if out_dir is None:
        if client is not None:
            raise ValueError("toy_ensemble with a Dask client needs out_dir (a folder every worker can write): "
                             "the chunk files are how the workers hand back their toys")
        parts = run_toy_chunks(problem, betas, n_toys, seed, range(n_chunks), chunk_size=chunk_size)
    else:
        out = Path(out_dir).resolve()
        (out / "chunks").mkdir(parents=True, exist_ok=True)
        mpath = out / "manifest.json"
        old = json.loads(mpath.read_text()) if mpath.exists() else None
        if old is not None and resume and old != manifest:
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            raise ValueError(f"{out} holds unfolding toys with other settings ({', '.join(diff)} differ); use a "
                             "new folder, the same settings, or resume=False (--overwrite) to discard them")
        if old != manifest or not resume:
            for f in (out / "chunks").glob("chunk_*.npz"):
                f.unlink()
            atomic_write_json(mpath, manifest, indent=1)
        todo = [k for k in range(n_chunks) if not toy_chunk_file(out, k).exists()]
        if todo and client is not None:
            from cevnsjax.stats.distributed import run_toy_chunks_dask

            run_toy_chunks_dask(client, problem, betas, n_toys, seed, todo, chunk_size=chunk_size, out_dir=out,
                                progress=progress)
        elif todo:
            run_toy_chunks(problem, betas, n_toys, seed, todo, chunk_size=chunk_size, out_dir=out)
        parts = {}
        for k in range(n_chunks):
            with np.load(toy_chunk_file(out, k), allow_pickle=False) as z:
                parts[k] = {name: z[name] for name in ("toys", "nu_hat", "B")}
    order = [parts[k] for k in range(n_chunks)]
    return (np.concatenate([p["toys"] for p in order]), np.concatenate([p["nu_hat"] for p in order], axis=1),
            np.concatenate([p["B"] for p in order], axis=1))


def run_unfolding(scenario=1, *, data_dir=None, n_toys: int = 1000, n_betas: int = 100,
                  beta_range=DEFAULT_BETA_RANGE, beta: float | str = "physical", seed: int = 0,
                  capture: bool = True, problem: UnfoldingProblem | None = None,
                  chunk_size: int = DEFAULT_TOY_CHUNK, out_dir=None, resume: bool = True,
                  client=None, progress: bool = False) -> UnfoldingResult:
    """One scenario end to end: problem, observed pseudo-data (a Poisson draw from the true spectrum,
    seed ``seed``), toys (toy i drawn with the key fold_in(PRNGKey(seed + 1), i)), the beta scan and bands
    at the chosen beta.

    The toys run in chunks of ``chunk_size`` (:func:`toy_ensemble`): with ``out_dir`` each chunk is written
    to a file as it finishes and a rerun with ``resume`` skips the finished ones; with a Dask ``client``
    every missing chunk is a task on its workers. The result is the same bits either way.

    ``beta``: a number, ``"physical"`` (median over toys of the per-toy physical beta) or ``"bias"``
    (Cowan's B ~ m). The CLI ``cevnsjax unfold`` is meant to call this.

    ``beta_range`` must reach down to where the estimator is the normal (unregularised) unfolding, or the
    physical criterion is decided by the grid instead of the data: a warning says so when every toy is
    already positive at the lowest beta.
    """
    if data_dir is None and problem is None:
        from cevnsjax.io.location import data_dir as _dd

        data_dir = _dd()
    prob = problem or build_problem(scenario, data_dir=data_dir, capture=capture)
    if int(n_toys) < 2:
        raise ValueError(f"n_toys={n_toys!r}: need >= 2 toys for bands")
    betas = np.geomspace(*beta_range, int(n_betas))
    if betas.ndim != 1 or np.any(~np.isfinite(betas)) or np.any(betas < 0) or np.any(np.diff(betas) <= 0):
        raise ValueError(f"beta_range={beta_range!r}, n_betas={n_betas!r}: need a strictly increasing grid of "
                         "finite betas >= 0")
    _check_solvable(prob.R, betas[0], prob.m)
    obs = toy_data(prob, 1, seed)[0]
    toys, nu, B = toy_ensemble(prob, betas, n_toys, seed, chunk_size=chunk_size, out_dir=out_dir, resume=resume,
                               client=client, progress=progress)
    R, h, b, L = _jnp_problem(prob)
    B_ref, U_ref = _ref_core(R, h, b, jnp.asarray(prob.asimov(True)), jnp.asarray(betas), L)
    scan = _scan_figures(prob, betas, nu, B, B_ref, U_ref)
    bp_toys = physical_beta(betas, nu)
    b_phys = float(np.median(bp_toys))
    if b_phys <= betas[0]:
        warnings.warn(f"{prob.name}: the physical-criterion beta is the lowest beta of the grid ({betas[0]:.3g}); "
                      "extend beta_range downwards (the criterion is then set by the grid, not by the data)",
                      stacklevel=2)
    b_bias = bias_criterion_beta(betas, scan.bias_B_mean, prob.m)
    if beta == "physical":
        chosen = b_phys
    elif beta == "bias":
        chosen = b_bias
    else:
        chosen = float(beta)
    if not math.isfinite(chosen):
        raise ValueError(f"beta criterion {beta!r} found no beta in [{betas[0]:.3g}, {betas[-1]:.3g}]; widen beta_range")
    st = unfold(prob, obs, chosen)
    k = int(np.argmin(np.abs(np.log(betas) - np.log(max(chosen, betas[0])))))
    nu_k = nu[k]
    if not np.isclose(betas[k], chosen, rtol=1e-9):  # chosen beta not on the grid: unfold the toys at it
        nu_k = np.asarray(_toy_core(R, h, b, jnp.asarray(toys), jnp.asarray([chosen], float), L)[0])[0]
    w = prob.widths_MeV
    tot = nu_k @ w
    return UnfoldingResult(
        scenario=prob.name, nu_edges_MeV=np.asarray(prob.nu_edges_MeV), nu_true=np.asarray(prob.nu_true),
        nu_hat=st["nu_hat"], sigma=np.sqrt(np.clip(np.diag(st["U"]), 0, None)),
        band68=np.percentile(nu_k, [16, 84], axis=0), band95=np.percentile(nu_k, [2.5, 97.5], axis=0),
        toy_median=np.median(nu_k, axis=0), beta=chosen, beta_physical=b_phys, beta_physical_toys=bp_toys,
        beta_bias=b_bias, flux_unfolded_range=np.array([prob.nu_true @ w, st["nu_hat"] @ w, np.percentile(tot, 95)]),
        scan=scan, n_toys=int(n_toys), seed=int(seed),
    )


# --------------------------------------------------------------------------- Bayesian alternative
def bayesian_model(R, h, b, n=None, nu_max: float = 20.0):
    """NumPyro model: nu_i ~ Uniform(0, nu_max) [nu/(MeV fission)], second differences L nu ~ Normal(0, tau)
    with tau ~ LogUniform(1e-3, 1e2) sampled (the Bayesian twin of Tikhonov: beta <-> 1/tau^2 in the
    Gaussian chi^2 limit), n_j ~ Poisson(R nu + h + b)."""
    import numpyro
    import numpyro.distributions as dist

    R, h, b = jnp.asarray(R), jnp.asarray(h), jnp.asarray(b)
    m = R.shape[1]
    L = jnp.asarray(second_difference_matrix(m))
    nu = numpyro.sample("nu", dist.Uniform(0.0, nu_max).expand([m]).to_event(1))
    tau = numpyro.sample("tau", dist.LogUniform(1e-3, 1e2))
    numpyro.sample("smooth", dist.Normal(0.0, tau).expand([m - 2]).to_event(1), obs=L @ nu)
    numpyro.deterministic("beta_equiv", 1.0 / tau**2)  # -2 log p = chi2 + |L nu|^2 / tau^2
    mu = R @ nu + h + b
    numpyro.sample("n", dist.Poisson(mu).to_event(1), obs=n)
