"""Experiments: target, exposure, source, detector response, binning, backgrounds and data, and the
expected counts they predict.

An :class:`Experiment` is a host-side, validated description (built from a TOML specification by
:mod:`cevnsjax.io.spec` or in Python). ``experiment.prepare()`` does the one-time work -- the E_nu
integral on a fine recoil grid, time fractions -- and returns a :class:`PreparedExperiment` pytree;
then :func:`predict` maps an :class:`ExperimentParams` pytree (physics parameters, quenching and
resolution models, efficiency, backgrounds, flux scales) to expected counts per observable bin.
``predict`` is jit-compiled once per prepared experiment and differentiable in every traced field.

Chain (REFERENCE §0): recoil nodes E_R (Gauss-Legendre in fine recoil bins, each carrying its
counts) -> E_obs = E_R, or E_ee = Q(E_R) E_R [keVee], or the mean photoelectron number
LY x E_ee -> response P(observed bin | E_obs) (Gaussian resolution, Poisson or Gamma PE statistics)
-> efficiency in the observable -> arrival-time fractions (pion DAR) -> + backgrounds.
Integrating over E_R nodes needs no Jacobian. With ``Observable(smearing="grid")`` the response of
the experiment's default resolution is tabulated once by ``prepare()`` on a uniform grid in E_obs and
each node is deposited on the 2 grid points around it (cubic Hermite weights, :func:`grid_deposit`):
the quenching parameters stay free, the resolution parameters are frozen (Dresden-II: 4x faster).
Without resolution, counts in E_ee bins come from the cumulative recoil spectrum at E_R(E_ee edges)
(exact Jacobian, differentiable in the quenching parameters; needs E_ee(E_R) monotonic: see
:func:`cevnsjax.detector.quenching.monotonic_threshold`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cevnsjax.detector.backgrounds import total_background
from cevnsjax.detector.per_nucleus import PerNucleusQuenching
from cevnsjax.detector.quenching import E_R_from_Eee, Lindhard, ModifiedLindhard
from cevnsjax.detector.response import (
    GeResolution,
    choose_smearing_grid,
    gamma_pe_bin_probabilities,
    gaussian_bin_probabilities,
    grid_deposit,
    hermite_weights,
    poisson_pe_bin_probabilities,
    time_bin_fractions,
)
from cevnsjax.names import check_known
from cevnsjax.physics.nuclei import Target
from cevnsjax.physics.params import PhysicsParams
from cevnsjax.physics.xsec import CrossSectionModel, E_R_max
from cevnsjax.rates import FluxValidityWarning, RateKernels, node_rates, prepare as prepare_kernels
from cevnsjax.sources.base import Source


class TableRangeWarning(UserWarning):
    """A tabulated model is used outside its table's range (its end values are held there)."""

__all__ = [
    "OBSERVABLES", "RecoilGrid", "Observable", "Observed", "ExperimentParams", "Experiment",
    "PreparedExperiment", "Prediction", "predict", "GaussianResolution", "PoissonPE", "GammaPE",
    "valid_names", "apply", "get", "check_names", "traced_fields", "PHYSICS_SCALARS",
]

OBSERVABLES = ("E_R_keV", "E_ee_keV", "PE")
SMEARING = ("exact", "grid")
MAX_MASS_KG = 1e9  # 1 Mt: beyond any detector (larger masses overflow the counts)
MAX_LIVE_DAYS = 1e6  # ~2700 years
#: absolute error allowed on every interpolated P(bin | E_obs) when smearing = "grid" picks its own step
GRID_SMEARING_TOL = 1e-7
FLAVOUR_ROWS = ("nu_e", "nu_mu", "nu_tau", "nubar_e", "nubar_mu", "nubar_tau")


def _static(**kw):
    return field(metadata=dict(static=True), **kw)


# ----------------------------------------------------------------------------------- response models
@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class GaussianResolution:
    """Gaussian resolution sigma(E) = sqrt(sigma0^2 + (frac E)^2 + slope E) in the observable's unit."""

    sigma0: float
    frac: float = 0.0
    slope: float = 0.0

    def __call__(self, E):
        E = jnp.maximum(jnp.asarray(E), 0.0)
        return jnp.sqrt(self.sigma0**2 + (self.frac * E) ** 2 + self.slope * E)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PoissonPE:
    """Photoelectron counting: N_PE ~ Poisson(light_yield [PE/keVee] x E_ee [keVee])."""

    light_yield: float


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class GammaPE:
    """COHERENT CsI 2021 PE smearing: Gamma with mean E_ee/a and shape 1 + b E_ee (see response.py)."""

    a: float = 0.0749
    b: float = 9.56


def _bin_probabilities(resolution, E_obs, edges, renormalise_positive):
    """P(observed bin | E_obs) with shape E_obs.shape + (n_bins,)."""
    if isinstance(resolution, PoissonPE):
        return poisson_pe_bin_probabilities(resolution.light_yield * E_obs, edges)
    if isinstance(resolution, GammaPE):
        return gamma_pe_bin_probabilities(E_obs, edges, resolution.a, resolution.b)
    if isinstance(resolution, (GeResolution, GaussianResolution)) or callable(resolution):
        return gaussian_bin_probabilities(resolution(E_obs), E_obs, edges, renormalise_positive)
    raise TypeError(f"resolution of type {type(resolution).__name__} is not supported; use GeResolution, "
                    "GaussianResolution, PoissonPE, GammaPE or a callable E -> sigma")


_GRID_RESOLUTIONS = (GeResolution, GaussianResolution, PoissonPE, GammaPE)
_bin_probabilities_jit = jax.jit(_bin_probabilities, static_argnums=3)  # grid tables: compiled once per shape


@jax.custom_jvp
def _frozen_guard(counts, leaves, ref):
    same = jnp.all(jnp.stack([jnp.all(a == b) for a, b in zip(leaves, ref)]))
    return jnp.where(same, counts, jnp.nan)


@partial(_frozen_guard.defjvp, symbolic_zeros=True)
def _frozen_guard_jvp(primals, tangents):
    counts, leaves, ref = primals
    dc, dl, _ = tangents
    out = _frozen_guard(counts, leaves, ref)
    dc = jnp.zeros_like(out) if isinstance(dc, jax.custom_derivatives.SymbolicZero) else dc
    # a derivative along a frozen resolution parameter does not exist on this path: NaN, not a silent 0
    live = [jnp.sum(d) for d in dl if not isinstance(d, jax.custom_derivatives.SymbolicZero)]
    if live:
        dc = dc + jnp.nan * sum(live)
    return out, dc


def _frozen_resolution(counts, resolution, reference):
    """``counts`` if ``resolution`` equals the one the grid table was made with, else NaN; a derivative
    along a resolution parameter is NaN (the table does not move with it): use smearing = "exact"."""
    if type(resolution) is not type(reference) or jax.tree.structure(resolution) != jax.tree.structure(reference):
        raise ValueError(f"this experiment was prepared with smearing='grid' for a {type(reference).__name__} "
                         f"resolution; theta.resolution is {type(resolution).__name__}. The grid table fixes the "
                         "resolution: keep the experiment's default, or build it with smearing='exact' to vary it")
    return _frozen_guard(counts, tuple(jax.tree.leaves(resolution)), tuple(jax.tree.leaves(reference)))


# ----------------------------------------------------------------------------------- description
@dataclass(frozen=True)
class RecoilGrid:
    """Fine log-spaced recoil binning for the response integral: ``n_bins`` bins from ``min_keV`` to ``max_keV``."""

    min_keV: float
    max_keV: float
    n_bins: int = 300
    nodes_per_bin: int = 4

    def __post_init__(self):
        if not (0 < self.min_keV < self.max_keV):
            raise ValueError(f"recoil_grid: need 0 < min_keV < max_keV, got {self.min_keV}, {self.max_keV}")
        if self.n_bins < 2 or self.nodes_per_bin < 1:
            raise ValueError(f"recoil_grid: n_bins={self.n_bins} must be >= 2 and nodes_per_bin={self.nodes_per_bin} >= 1")

    def edges(self) -> np.ndarray:
        return np.geomspace(self.min_keV, self.max_keV, self.n_bins + 1)


@dataclass(frozen=True)
class Observable:
    """What is binned: ``kind`` in OBSERVABLES, bin ``edges`` (keV, keVee or PE), optional arrival-time
    bins [us] with a PDF per flux component name (pion DAR: prompt / delayed)."""

    kind: str
    edges: tuple
    time_edges_us: tuple | None = None
    time_pdfs: tuple = ()  # ((component name, ArrivalTimePDF), ...)
    renormalise_positive: bool = False
    efficiency_subbins: int = 1  # efficiency averaged over this many equal sub-bins of each bin
    smearing: str = "exact"  # "exact": P(bin | E_obs) per node and call; "grid": tabulated once (see prepare)
    smearing_step: float | None = None  # grid step in E_obs units [keV or keVee]; None = automatic

    def __post_init__(self):
        if self.smearing not in SMEARING:
            raise ValueError(f"smearing={self.smearing!r} is not valid; use one of {SMEARING} "
                             "('grid': resolution fixed at the experiment's defaults, tabulated once)")
        if self.smearing_step is not None:
            st = self.smearing_step
            if isinstance(st, bool) or not isinstance(st, (int, float)) or not (np.isfinite(st) and st > 0):
                raise ValueError(f"smearing_step={st!r} must be a finite number > 0 (grid step in the true "
                                 "observable, keV or keVee), or None for the automatic step")
            if self.smearing != "grid":
                raise ValueError(f"smearing_step={st!r} is only used with smearing='grid' (got smearing={self.smearing!r}); "
                                 "set smearing='grid' or drop smearing_step")
            object.__setattr__(self, "smearing_step", float(st))
        if not isinstance(self.efficiency_subbins, int) or self.efficiency_subbins < 1:
            raise ValueError(f"efficiency_subbins={self.efficiency_subbins!r} must be a positive integer")
        if self.kind not in OBSERVABLES:
            raise ValueError(f"observable kind={self.kind!r}; use one of {OBSERVABLES}")
        e = np.asarray(self.edges, float)
        if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise ValueError(f"observable edges must be >= 2 finite, strictly increasing values, got {self.edges!r}")
        object.__setattr__(self, "edges", tuple(map(float, e)))
        if self.time_edges_us is not None:
            t = np.asarray(self.time_edges_us, float)
            if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0):
                raise ValueError("time_edges_us must be >= 2 strictly increasing times in microseconds")
            object.__setattr__(self, "time_edges_us", tuple(map(float, t)))
            if isinstance(self.time_pdfs, dict):
                object.__setattr__(self, "time_pdfs", tuple(self.time_pdfs.items()))

    def response_edges(self) -> np.ndarray:
        """Bin edges with every bin split into ``efficiency_subbins`` equal parts."""
        e = np.asarray(self.edges)
        s = self.efficiency_subbins
        inner = e[:-1, None] + np.diff(e)[:, None] * (np.arange(s) / s)[None, :]
        return np.append(inner.ravel(), e[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        n = len(self.edges) - 1
        return (n,) if self.time_edges_us is None else (n, len(self.time_edges_us) - 1)

    @property
    def unit(self) -> str:
        return {"E_R_keV": "keVnr", "E_ee_keV": "keVee", "PE": "PE"}[self.kind]


@dataclass(frozen=True, eq=False)
class Observed:
    """Measured values in the observable bins: counts (Poisson) or rates with errors (Gaussian)."""

    values: np.ndarray
    errors: np.ndarray | None = None
    likelihood: str = "poisson"
    label: str = ""

    def __post_init__(self):
        v = np.asarray(self.values, float)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"observed values ({self.label}) contain NaN or inf")
        object.__setattr__(self, "values", v)
        if self.likelihood not in ("poisson", "gaussian"):
            raise ValueError(f"likelihood={self.likelihood!r}; use 'poisson' (counts) or 'gaussian' (rates with errors)")
        if self.likelihood == "poisson" and np.any(v < 0):
            raise ValueError(f"observed counts ({self.label}) must be >= 0 for a Poisson likelihood")
        if self.likelihood == "gaussian":
            if self.errors is None:
                raise ValueError(f"observed ({self.label}): a Gaussian likelihood needs errors")
            e = np.asarray(self.errors, float)
            if e.shape != v.shape or np.any(~np.isfinite(e)) or np.any(e <= 0):
                raise ValueError(f"observed errors ({self.label}) must be finite, > 0 and shaped like the values {v.shape}")
            object.__setattr__(self, "errors", e)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class ExperimentParams:
    """Everything ``predict`` depends on; every array leaf is differentiable.

    physics: :class:`PhysicsParams`; flux_scale: one factor per flux component (ones = nominal);
    quenching: a :mod:`cevnsjax.detector.quenching` model (None for the E_R observable); resolution: a
    Gaussian width model, PoissonPE or GammaPE (None = perfect resolution); efficiency: callable of
    the observable, applied at the centres of ``Observable.efficiency_subbins`` equal sub-bins of
    each bin (None = 1); time_efficiency: callable of time [us] at time-bin
    centres; backgrounds: tuple of :mod:`cevnsjax.detector.backgrounds` models; signal_scale: overall factor.
    """

    physics: PhysicsParams
    flux_scale: jax.Array
    quenching: Any = None
    resolution: Any = None
    efficiency: Any = None
    time_efficiency: Any = None
    backgrounds: tuple = ()
    signal_scale: jax.Array | float = 1.0

    def replace(self, **kw) -> ExperimentParams:
        return dataclasses.replace(self, **kw)

    def background(self, name: str):
        for b in self.backgrounds:
            if b.name == name:
                return b
        raise KeyError(f"no background named {name!r}; have {[b.name for b in self.backgrounds]}")

    def replace_background(self, name: str, **fields) -> ExperimentParams:
        """A copy with fields of the background ``name`` changed (e.g. rate=...)."""
        self.background(name)
        bgs = tuple(dataclasses.replace(b, **fields) if b.name == name else b for b in self.backgrounds)
        return dataclasses.replace(self, backgrounds=bgs)


@dataclass(frozen=True, eq=False)
class Experiment:
    """A detector at a source with its response, binning, backgrounds and (optionally) data."""

    name: str
    target: str
    mass_kg: float
    live_days: float
    source: Source
    observable: Observable
    recoil_grid: RecoilGrid | None
    defaults: ExperimentParams
    model: CrossSectionModel = field(default_factory=CrossSectionModel)
    observed: Observed | None = None
    description: str = ""

    def __post_init__(self):
        Target.from_formula(self.target)  # validates the formula
        for k, top in (("mass_kg", MAX_MASS_KG), ("live_days", MAX_LIVE_DAYS)):
            v = getattr(self, k)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{self.name}: {k}={v!r} must be finite and > 0")
            if v > top:  # beyond any detector; larger values overflow the counts
                raise ValueError(f"{self.name}: {k}={v!r} is implausible (> {top:g}); give it in "
                                 f"{'kg' if k == 'mass_kg' else 'days'}")
        if self.observable.kind != "E_R_keV" and self.defaults.quenching is None:
            raise ValueError(f"{self.name}: observable {self.observable.kind!r} needs a quenching model")
        if self.observable.kind == "PE" and self.defaults.resolution is None:
            raise ValueError(f"{self.name}: a PE observable needs PoissonPE(light_yield) or GammaPE as resolution")
        res = self.defaults.resolution
        if res is not None and (self.observable.kind == "PE") != isinstance(res, (PoissonPE, GammaPE)):
            raise ValueError(f"{self.name}: observable {self.observable.kind!r} does not match its resolution "
                             f"{type(res).__name__}: a PE observable takes PoissonPE or GammaPE (resolution model "
                             "\"poisson_pe\" or \"gamma_pe\"), an energy observable a Gaussian one (\"ge\", \"gaussian\")")
        if self.observed is not None and self.observed.values.shape != self.observable.shape:
            raise ValueError(f"{self.name}: observed values have shape {self.observed.values.shape}, "
                             f"the observable has {self.observable.shape}")
        if (self.observable.kind != "E_R_keV" or self.defaults.resolution is not None) and self.recoil_grid is None:
            raise ValueError(f"{self.name}: a recoil_grid (min_keV, max_keV, n_bins) is needed for this response")
        if self.observable.smearing == "grid" and not isinstance(self.defaults.resolution, _GRID_RESOLUTIONS):
            raise ValueError(f"{self.name}: smearing='grid' needs a resolution model of type "
                             f"{', '.join(t.__name__ for t in _GRID_RESOLUTIONS)}, got "
                             f"{type(self.defaults.resolution).__name__}; use smearing='exact'")
        self._check_compound_quenching()
        self._check_grid_coverage()
        self._check_table_ranges()

    def _check_table_ranges(self):
        """Warn when the recoil grid runs past a tabulated quenching table (held at its end value there)."""
        q, g = self.defaults.quenching, self.recoil_grid
        if g is None or q is None:
            return
        for m in (q.models if isinstance(q, PerNucleusQuenching) else (q,)):
            E = getattr(m, "E_R_keV", None)
            if E is not None and np.ndim(E) == 1 and (g.max_keV > E[-1] * (1 + 1e-9) or g.min_keV < E[0] * (1 - 1e-9)):
                warnings.warn(f"{self.name}: quenching table {type(m).__name__} covers E_R {E[0]:g}-{E[-1]:g} keVnr but the "
                              f"recoil grid spans {g.min_keV:g}-{g.max_keV:g} keVnr; outside the table Q is held at its end "
                              "value (extrapolation): extend the table or narrow recoil_grid", TableRangeWarning, stacklevel=3)

    def _check_grid_coverage(self):
        """The recoil grid must reach the recoil energy of the top observable edge, or the kinematic
        maximum 2E^2/(M + 2E) of the source's largest neutrino energy on the lightest nucleus if lower."""
        obs, g, q = self.observable, self.recoil_grid, self.defaults.quenching
        if g is None or obs.kind == "PE":
            return
        e_nu = []
        for c in self.source.components():
            e = getattr(c, "energy_max", None)  # a continuous component; a line has .energy
            e_nu.append(float(e if e is not None else getattr(c, "energy", np.inf)))
        M = float(np.min(Target.from_formula(self.target).mass_MeV))
        kin_keV = 1e3 * float(E_R_max(max(e_nu), M)) if e_nu and np.isfinite(max(e_nu)) else np.inf
        if obs.kind == "E_R_keV":
            reach, what = g.max_keV, f"{g.max_keV:g} keV"
        else:
            models = q.models if isinstance(q, PerNucleusQuenching) else (q,)
            reach = max(float(np.asarray(m.E_ee(jnp.asarray(g.max_keV)))) for m in models)
            what = f"{g.max_keV:g} keVnr (quenched: {reach:.4g} keVee)"
        if reach < obs.edges[-1] and g.max_keV < kin_keV:
            raise ValueError(f"{self.name}: recoil_grid.max_keV = {what} does not cover the observable up to "
                             f"{obs.edges[-1]:g} ({obs.kind}), and recoils reach {kin_keV:.4g} keV; raise "
                             f"recoil_grid.max_keV to at least {min(kin_keV, 1e9):.4g} or lower the top bin edge")

    def _check_compound_quenching(self):
        """PerNucleusQuenching must cover every element; one Lindhard model for a compound warns."""
        q, els = self.defaults.quenching, {i.element for i in Target.from_formula(self.target).isotopes}
        if isinstance(q, PerNucleusQuenching) and els - set(q.elements):
            raise ValueError(f"{self.name}: quenching has models for {q.elements} but the target {self.target!r} also "
                             f"holds {sorted(els - set(q.elements))}; use PerNucleusQuenching.lindhard({self.target!r})")
        if isinstance(q, (Lindhard, ModifiedLindhard)) and len(els) > 1 and self.observable.kind != "E_R_keV":
            warnings.warn(f"{self.name}: one {type(q).__name__} model (Z={q.Z:g}, A={q.A:g}) quenches every nucleus of "
                          f"{self.target!r}, but each has its own k(Z, A) and eps(Z): use PerNucleusQuenching.lindhard("
                          f"{self.target!r}) (spec: model = \"lindhard\" without Z, A)", UserWarning, stacklevel=3)

    @property
    def exposure_kg_day(self) -> float:
        return float(self.mass_kg * self.live_days)

    def default_params(self) -> ExperimentParams:
        return self.defaults

    def threshold_keV(self) -> float:
        """Lowest recoil energy [keVnr] the observable bins use: the lowest edge (E_R), or the recoil energy
        that the default quenching maps to the lowest E_ee edge (the smallest over the nuclei of a compound),
        never below the recoil grid; the recoil grid minimum for PE."""
        obs, q = self.observable, self.defaults.quenching
        lo = self.recoil_grid.min_keV if self.recoil_grid is not None else obs.edges[0]
        if obs.kind == "E_R_keV":
            return max(lo, obs.edges[0])
        if obs.kind == "PE" or obs.edges[0] <= 0:
            return lo
        models = q.models if isinstance(q, PerNucleusQuenching) else (q,)
        E_R = np.geomspace(lo, self.recoil_grid.max_keV, 4001)  # 0.1% steps: the grid point below the crossing
        out = []
        for m in models:
            above = np.nonzero(np.asarray(m.E_ee(jnp.asarray(E_R))) >= obs.edges[0])[0]
            out.append(E_R[max(above[0] - 1, 0)] if above.size else E_R[-1])
        return float(max(lo, min(out)))

    def prepare(self) -> PreparedExperiment:
        """One-time work: kernels on the recoil grid, arrival-time fractions and (smearing = "grid") the
        response table P(bin | E_obs = lo + g step) of the default resolution, with its derivative.

        Grid smearing: E_obs of a node is at most the recoil-grid maximum (Q <= 1); ``step`` None picks
        the largest step at which the cubic Hermite interpolation of every P(bin | E_obs) is within
        ``GRID_SMEARING_TOL`` = 1e-7 (Dresden-II: 7.6 eV for sigma >= 68.5 eV, 276 points up to 2.1
        keVee); the table is trimmed to the E_obs range where some bin has P > 1e-15 (nodes outside
        contribute less and are dropped). See :func:`cevnsjax.detector.response.choose_smearing_grid`.
        """
        obs = self.observable
        direct = obs.kind == "E_R_keV" and self.defaults.resolution is None
        resp_edges = obs.response_edges()
        edges = resp_edges if direct else self.recoil_grid.edges()
        npb = 8 if direct else self.recoil_grid.nodes_per_bin
        smeared = self.defaults.resolution is not None
        thr = self.threshold_keV()
        kernels = prepare_kernels(self.target, self.source, bin_edges_keV=edges, model=self.model, nodes_per_bin=npb,
                                  common_nodes=not direct, split_at_kinks=not smeared, threshold_keV=thr)
        edge_kernels = None
        if not direct and self.defaults.resolution is None:  # cumulative method: densities at the fine edges
            with warnings.catch_warnings():  # the same grid and threshold: warned once above
                warnings.simplefilter("ignore", FluxValidityWarning)
                edge_kernels = prepare_kernels(self.target, self.source, E_R_keV=edges, model=self.model,
                                               threshold_keV=thr)
        tf = None
        if obs.time_edges_us is not None:
            pdfs = dict(obs.time_pdfs)
            missing = [n for n in kernels.component_names if n not in pdfs]
            if missing:
                raise ValueError(f"{self.name}: no arrival-time PDF for flux components {missing}; have {sorted(pdfs)}")
            tf = np.stack([np.asarray(time_bin_fractions(pdfs[n], np.asarray(obs.time_edges_us)))
                           for n in kernels.component_names])
        return PreparedExperiment(
            kernels=kernels, edge_kernels=edge_kernels, obs_edges=jnp.asarray(obs.edges),
            resp_edges=jnp.asarray(resp_edges), subbins=obs.efficiency_subbins, exposure_kg_day=jnp.asarray(self.exposure_kg_day),
            time_fractions=None if tf is None else jnp.asarray(tf),
            time_centres_us=None if tf is None else jnp.asarray(
                0.5 * (np.asarray(obs.time_edges_us[1:]) + np.asarray(obs.time_edges_us[:-1]))),
            kind=obs.kind, direct=direct, renormalise_positive=obs.renormalise_positive,
            **self._grid_smearing(resp_edges),
        )

    def _grid_smearing(self, resp_edges) -> dict:
        obs = self.observable
        if obs.smearing != "grid":
            return {}
        res = self.defaults.resolution
        try:
            lo, step, table, _ = choose_smearing_grid(
                lambda E: _bin_probabilities_jit(res, E, jnp.asarray(resp_edges), obs.renormalise_positive),
                float(self.recoil_grid.max_keV), obs.smearing_step, GRID_SMEARING_TOL)
        except ValueError as err:
            raise ValueError(f"{self.name}: smearing='grid' with {type(res).__name__}: {err}") from None
        return dict(smear=jnp.asarray(table), smear_resolution=res, smear_lo=lo, smear_step=step)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PreparedExperiment:
    """Kernels and static response data of an experiment (a pytree; see :func:`predict`)."""

    kernels: RateKernels
    edge_kernels: RateKernels | None
    obs_edges: jax.Array
    resp_edges: jax.Array
    exposure_kg_day: jax.Array
    time_fractions: jax.Array | None
    time_centres_us: jax.Array | None
    kind: str = _static()
    subbins: int = _static()
    direct: bool = _static()
    renormalise_positive: bool = _static()
    smear: jax.Array | None = None  # (2 n_grid, n_bins): P(bin | E_obs = smear_lo + g smear_step), then step dP/dE
    smear_resolution: Any = None  # the resolution the table was made with (frozen: see _frozen_resolution)
    smear_lo: float = _static(default=0.0)
    smear_step: float = _static(default=0.0)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Prediction:
    """Expected counts per observable bin: signal, signal by flavour (6 rows: nu_e, nu_mu, nu_tau,
    anti-nu_e, anti-nu_mu, anti-nu_tau), background and total."""

    signal: jax.Array
    signal_by_flavour: jax.Array
    background: jax.Array
    total: jax.Array


def _flavour_rows(K) -> np.ndarray:
    """Row of each flux component in the 6-row flavour table (nu_e, nu_mu, nu_tau, then anti)."""
    return np.asarray(K.component_flavour) + 3 * np.asarray(K.component_antineutrino, int)


def _signal_by_component(theta: ExperimentParams, prep: PreparedExperiment, group: bool = False):
    """Expected signal counts (rows, n_energy_bins) for the experiment's exposure, and the flavour
    row of each output row. Rows are the flux components, or (``group``) the flavours present:
    components of one flavour share the response, so grouping them first saves work."""
    K = prep.kernels
    per_node = node_rates(theta.physics, K, theta.flux_scale) * K.weight_keV  # (C, T, n) events/(kg day)
    per_node = per_node * (prep.exposure_kg_day * theta.signal_scale)
    rows = _flavour_rows(K)
    onehot = None
    if group:
        present = np.unique(rows)
        onehot = jnp.asarray((rows[None, :] == present[:, None]).astype(np.float64), per_node.dtype)  # (G, C)
        per_node = jnp.einsum("gc,ctn->gtn", onehot, per_node)
        rows = present
    return _response(theta, prep, per_node, onehot), rows


def _response(theta: ExperimentParams, prep: PreparedExperiment, per_node, onehot=None, iso=None):
    """Counts per node (rows, T, n) -> counts per response bin (rows, n_bins); ``onehot`` (rows, C)
    maps flux components to rows when they were grouped; ``iso`` (bool, n_iso) the isotopes that
    ``per_node`` holds (all if None)."""
    K = prep.kernels
    edges = prep.resp_edges
    n_bins = edges.shape[0] - 1
    if prep.direct:
        seg = jax.vmap(lambda w, s: jax.ops.segment_sum(w.T, s, num_segments=n_bins, indices_are_sorted=True).T,
                       in_axes=(1, 0), out_axes=1)
        return seg(per_node, K.segment).sum(axis=1)
    if isinstance(theta.quenching, PerNucleusQuenching) and prep.kind != "E_R_keV":
        # a compound: the isotopes of each element quenched with that element's own model, then summed
        g = theta.quenching.groups(K.isotope_names)
        return sum(_response(dataclasses.replace(theta, quenching=m), prep, per_node[:, g == i], onehot, g == i)
                   for i, m in enumerate(theta.quenching.models) if np.any(g == i))
    # common recoil nodes for all isotopes: sum over isotopes first, then one response per node
    per_node = per_node.sum(axis=1)  # (C, n)
    E_R = K.E_R_MeV[0] * 1e3  # keV
    E_obs = E_R if prep.kind == "E_R_keV" else theta.quenching.E_ee(E_R)
    if prep.smear is not None:  # fixed-grid smearing: deposit each node on 2 grid points, then one matmul
        x = (E_obs - prep.smear_lo) / prep.smear_step
        # the derivative terms can be < 0: far in the tails a bin may come out ~1e-7 x (node counts) below 0
        counts = jnp.maximum(grid_deposit(per_node, x, prep.smear.shape[0] // 2) @ prep.smear, 0.0)
        return _frozen_resolution(counts, theta.resolution, prep.smear_resolution)
    if theta.resolution is not None:
        P = _bin_probabilities(theta.resolution, E_obs, edges, prep.renormalise_positive)  # (n, nb)
        return per_node @ P
    # perfect resolution in E_ee: the cumulative recoil spectrum, known at the fine edges with its
    # derivative (the density), interpolated by cubic Hermite at E_R(E_ee edges): exact Jacobian,
    # differentiable in the quenching parameters, O(h^4) away from kinematic kinks.
    if prep.edge_kernels is None:
        raise ValueError("this experiment was prepared with a resolution; pass a resolution model in theta")
    fine = jnp.asarray(K.grid_keV)
    nf = fine.shape[0] - 1
    per_fine = jax.ops.segment_sum(per_node.T, K.segment[0], num_segments=nf, indices_are_sorted=True).T  # (C, nf)
    cum = jnp.concatenate([jnp.zeros((per_fine.shape[0], 1), per_fine.dtype), jnp.cumsum(per_fine, -1)], -1)
    dens = node_rates(theta.physics, prep.edge_kernels, theta.flux_scale)
    dens = (dens if iso is None else dens[:, iso]).sum(axis=1)
    if onehot is not None:
        dens = onehot @ dens
    dens = dens * (prep.exposure_kg_day * theta.signal_scale)  # (C, nf+1) counts per keV
    x = E_R_from_Eee(theta.quenching, edges, float(K.grid_keV[0]), float(K.grid_keV[-1]))
    i = jnp.clip(jnp.searchsorted(fine, jax.lax.stop_gradient(x), side="right") - 1, 0, nf - 1)
    h = fine[i + 1] - fine[i]
    t = (x - fine[i]) / h
    w = hermite_weights(t)  # (nb+1, 4): weights of f(0), f(1), f'(0), f'(1)
    at = w[:, 0] * cum[:, i] + w[:, 1] * cum[:, i + 1] + w[:, 2] * h * dens[:, i] + w[:, 3] * h * dens[:, i + 1]
    return jnp.diff(at, axis=-1)


@jax.jit
def predict(theta: ExperimentParams, prep: PreparedExperiment) -> Prediction:
    """Expected counts in every observable bin for parameters ``theta``."""
    r = prep.resp_edges
    eff = None if theta.efficiency is None else theta.efficiency(0.5 * (r[1:] + r[:-1]))
    # flavour-grouped response unless a per-component efficiency or arrival time needs components
    group = prep.time_fractions is None and (eff is None or jnp.ndim(eff) == 1)
    comp, rows = _signal_by_component(theta, prep, group)  # (rows, nE x subbins)
    if eff is not None:
        comp = comp * eff
    if prep.subbins > 1:
        comp = comp.reshape(comp.shape[0], -1, prep.subbins).sum(-1)
    edges = prep.obs_edges
    if prep.time_fractions is not None:
        tf = prep.time_fractions
        if theta.time_efficiency is not None:
            tf = tf * theta.time_efficiency(prep.time_centres_us)
        comp = comp[:, :, None] * tf[:, None, :]
    by_flavour = jax.ops.segment_sum(comp, rows, num_segments=6)
    signal = comp.sum(axis=0)
    bkg = total_background(theta.backgrounds, edges, prep.exposure_kg_day, signal.shape)
    return Prediction(signal=signal, signal_by_flavour=by_flavour, background=bkg, total=signal + bkg)


# ---------------------------------------------------------------------------------------------------
# Parameter names
#
# Named parameters of an experiment: one flat namespace for fits, samplers and scans.
#
# A name addresses one scalar inside :class:`~cevnsjax.experiment.ExperimentParams`:
#
# * physics: ``sin2_theta_w``, ``delta_gp_v``, ``delta_gn_v``, ``g_zprime``, ``m_zprime_MeV``,
#   ``g_scalar``, ``m_scalar_MeV``, ``delta_rp_fm``, ``delta_rn_fm``; NSI entries ``eps_u_ee``,
#   ``eps_d_mue``, ... (``eps_<q>_<beta><alpha>``, flavours e, mu, tau; off-diagonal names set both
#   the (beta, alpha) and (alpha, beta) entries, as for a real symmetric matrix); per-flavour
#   ``magnetic_moment_1e10_muB_e`` and ``charge_radius2_1e32_cm2_mu``;
# * detector: ``k`` and ``q`` (quenching; aliases of ``quenching.k``, ``quenching.q``), any traced
#   field as ``quenching.<f>``, ``resolution.<f>``, ``efficiency.<f>``;
# * backgrounds: ``bkg.<name>.<field>`` (e.g. ``bkg.dresden_ii.A``, ``bkg.flat.rate``);
# * flux: ``flux_norm`` (multiplies every component), ``flux.<component>`` (e.g. ``flux.bin3``,
#   ``flux.U235``); ``signal_scale``.
#
# :func:`valid_names` lists what an experiment accepts; :func:`apply` sets values (pure, jit-able).
PHYSICS_SCALARS = ("sin2_theta_w", "delta_gp_v", "delta_gn_v", "g_zprime", "m_zprime_MeV", "g_scalar",
                   "m_scalar_MeV", "delta_rp_fm", "delta_rn_fm")
_FL = ("e", "mu", "tau")
_NSI = {f"eps_{q}_{b}{a}": (f"eps_{q}", i, j) for q in ("u", "d") for i, b in enumerate(_FL) for j, a in enumerate(_FL)}
_PER_FLAVOUR = {f"{base}_{f}": (base, i) for base in ("magnetic_moment_1e10_muB", "charge_radius2_1e32_cm2")
                for i, f in enumerate(_FL)}
_ALIASES = {"k": "quenching.k", "q": "quenching.q"}


def traced_fields(obj) -> list[str]:
    if obj is None or not dataclasses.is_dataclass(obj):
        return []
    return [f.name for f in dataclasses.fields(obj) if not f.metadata.get("static", False)
            and jnp.ndim(getattr(obj, f.name)) == 0]


def frozen_parts(experiment) -> tuple[str, ...]:
    """Parts of the response an experiment tabulated once and cannot vary (smearing = "grid": resolution)."""
    obs = getattr(experiment, "observable", None)
    return ("resolution",) if getattr(obs, "smearing", "exact") == "grid" else ()


def valid_names(theta: ExperimentParams, component_names=(), experiment=None) -> list[str]:
    """Every parameter name that :func:`apply` accepts for these parameters (and, given the ``experiment``,
    that it can vary: no ``resolution.*`` when its smearing is tabulated once, ``smearing = "grid"``)."""
    names = list(PHYSICS_SCALARS) + list(_NSI) + list(_PER_FLAVOUR) + ["flux_norm", "signal_scale"]
    names += [f"flux.{c}" for c in component_names]
    frozen = frozen_parts(experiment)
    for part in ("quenching", "resolution", "efficiency"):
        if part not in frozen:
            names += [f"{part}.{f}" for f in traced_fields(getattr(theta, part))]
    if theta.quenching is not None and {"k", "q"} & set(traced_fields(theta.quenching)):
        names += [a for a, full in _ALIASES.items() if full.split(".")[1] in traced_fields(theta.quenching)]
    for b in theta.backgrounds:
        names += [f"bkg.{b.name}.{f}" for f in traced_fields(b)]
    return names


def check_names(names, theta: ExperimentParams, component_names=(), experiment=None) -> None:
    """Raise ValueError naming each unknown parameter, its closest valid name and the valid choices."""
    valid = valid_names(theta, component_names, experiment)
    _check_duplicates(names)
    for n in names:
        if n.split(".")[0] in frozen_parts(experiment) and n in valid_names(theta, component_names):
            raise ValueError(f"parameter {n!r} cannot vary: experiment {experiment.name!r} tabulates its resolution "
                             "once (smearing='grid'); build it with smearing='exact' (spec: [detector] smearing = "
                             "\"exact\") to fit the resolution")
    check_known(names, valid, "parameter")


def _set_physics(phys, name, value):
    if name in PHYSICS_SCALARS:
        return dataclasses.replace(phys, **{name: value})
    if name in _NSI:
        field, i, j = _NSI[name]
        m = jnp.asarray(getattr(phys, field), dtype=jnp.result_type(value, float))
        m = m.at[i, j].set(value).at[j, i].set(value)
        return dataclasses.replace(phys, **{field: m})
    field, i = _PER_FLAVOUR[name]
    v = jnp.asarray(getattr(phys, field), dtype=jnp.result_type(value, float)).at[i].set(value)
    return dataclasses.replace(phys, **{field: v})


def apply(theta: ExperimentParams, values: Mapping[str, object], component_names=()) -> ExperimentParams:
    """A copy of ``theta`` with named parameters set (names are checked by :func:`check_names`, once; a
    parameter given under two names, e.g. ``k`` and ``quenching.k``, is an error here too)."""
    _check_duplicates(values)
    for name, value in values.items():
        name = _ALIASES.get(name, name)
        if name in PHYSICS_SCALARS or name in _NSI or name in _PER_FLAVOUR:
            theta = dataclasses.replace(theta, physics=_set_physics(theta.physics, name, value))
        elif name == "signal_scale":
            theta = dataclasses.replace(theta, signal_scale=value)
        elif name == "flux_norm":
            theta = dataclasses.replace(theta, flux_scale=theta.flux_scale * value)
        elif name.startswith("flux."):
            i = list(component_names).index(name[5:])
            theta = dataclasses.replace(theta, flux_scale=jnp.asarray(theta.flux_scale).at[i].set(value))
        elif name.startswith("bkg."):
            _, bname, field = name.split(".", 2)
            theta = theta.replace_background(bname, **{field: value})
        else:
            if "." not in name:
                raise ValueError(f"unknown parameter {name!r}; `cevnsjax params SPEC` lists the valid names")
            part, field = name.split(".", 1)
            theta = dataclasses.replace(theta, **{part: dataclasses.replace(getattr(theta, part), **{field: value})})
    return theta


def _check_duplicates(names) -> None:
    """Raise ValueError when one parameter is named twice (an alias and its full name: ``k``, ``quenching.k``)."""
    seen = {}
    for n in names:
        canon = _ALIASES.get(n, n)
        if canon in seen:
            raise ValueError(f"parameter {canon!r} is given twice, as {seen[canon]!r} and {n!r}; give it once")
        seen[canon] = n


def get(theta: ExperimentParams, name: str, component_names=()):
    """The current value of a named parameter (for starting points)."""
    name = _ALIASES.get(name, name)
    p = theta.physics
    if name in PHYSICS_SCALARS:
        return getattr(p, name)
    if name in _NSI:
        field, i, j = _NSI[name]
        return jnp.asarray(getattr(p, field))[i, j]
    if name in _PER_FLAVOUR:
        field, i = _PER_FLAVOUR[name]
        return jnp.asarray(getattr(p, field))[i]
    if name == "signal_scale":
        return theta.signal_scale
    if name == "flux_norm":
        return 1.0
    if name.startswith("flux."):
        return jnp.asarray(theta.flux_scale)[list(component_names).index(name[5:])]
    if name.startswith("bkg."):
        _, bname, field = name.split(".", 2)
        return getattr(theta.background(bname), field)
    part, field = name.split(".", 1)
    return getattr(getattr(theta, part), field)
