"""Rate kernels (prepared once) and recoil spectra (a jitted contraction per parameter point).

``prepare(target, source, ...)`` integrates every flux component against the three kinematic
weights of :mod:`cevnsjax.physics.xsec` over E_nu from the exact threshold E_nu,min(E_R) upwards
(Gauss-Legendre, split at the source's breakpoints; lines exactly), for every isotope of the target
and every recoil node. The form factor depends on E_R only, so it stays outside the integral and
radii remain free parameters. What comes out is a :class:`RateKernels` pytree; then

    dR/dE_R(theta) = sum_c s_c sum_t sum_w C_w(theta; t, E_R) K[c, t, w, E_R]

is cheap, jit-compiled once and differentiable in every parameter and in the per-component flux
scales ``s_c`` (which is how binned fluxes and flux nuisances enter, linearly).

The public functions are jit-compiled (once per kernel shape and ``by``); new parameter values
never trigger a new trace.

Units: E_R in keV at the interface (MeV inside), rates in events / (kg day keV) for spectra and
events / (kg day) for bins.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from cevnsjax.physics.constants import G_F, HBARC2_MEV2_CM2, KEV, SECONDS_PER_DAY
from cevnsjax.physics.nuclei import Target
from cevnsjax.physics.params import PhysicsParams
from cevnsjax.physics.xsec import CrossSectionModel, E_nu_min, E_R_max, coefficients, kinematic_weights
from cevnsjax.sources.base import ContinuousComponent, LineComponent, Source, subintervals

__all__ = ["RateKernels", "FluxValidityWarning", "warn_truncated_flux", "prepare", "node_rates", "recoil_spectrum",
           "binned_rate", "expected_counts"]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)


@dataclass(frozen=True)
class RateKernels:
    """Flux-integrated kernels of one (target, source, recoil grid, cross-section model).

    Array fields (traced): ``K`` (n_comp, n_iso, 3, n_nodes) in events/(kg day keV) per unit
    coefficient; ``E_R_MeV`` and ``weight_keV`` (n_iso, n_nodes) recoil nodes and their quadrature
    weights; ``segment`` (n_iso, n_nodes) the output index (point or bin) of each node; isotope
    constants ``Z, N, M_MeV, rp0_fm, rn0_fm`` (n_iso, 1).
    Static fields: the model, component and isotope names, component flavours, the output grid.
    """

    K: jax.Array
    E_R_MeV: jax.Array
    weight_keV: jax.Array
    segment: jax.Array
    Z: jax.Array
    N: jax.Array
    M_MeV: jax.Array
    rp0_fm: jax.Array
    rn0_fm: jax.Array
    model: CrossSectionModel = field(metadata=dict(static=True))
    component_names: tuple = field(metadata=dict(static=True))
    component_flavour: tuple = field(metadata=dict(static=True))
    component_antineutrino: tuple = field(metadata=dict(static=True))
    isotope_names: tuple = field(metadata=dict(static=True))
    kind: str = field(metadata=dict(static=True))  # 'points' or 'bins'
    grid_keV: tuple = field(metadata=dict(static=True))  # points, or bin edges
    common_nodes: bool = field(default=False, metadata=dict(static=True))  # same E_R nodes for all isotopes

    @property
    def n_out(self) -> int:
        return len(self.grid_keV) if self.kind == "points" else len(self.grid_keV) - 1

    @property
    def n_components(self) -> int:
        return len(self.component_names)

    def astype(self, dtype) -> RateKernels:
        """Kernels with floating arrays cast to ``dtype`` (e.g. float32 for GPUs)."""
        fields = ("K", "E_R_MeV", "weight_keV", "Z", "N", "M_MeV", "rp0_fm", "rn0_fm")
        cast = {k: jnp.asarray(getattr(self, k), dtype) for k in fields}
        return dataclasses.replace(self, **cast)


jax.tree_util.register_dataclass(
    RateKernels,
    data_fields=["K", "E_R_MeV", "weight_keV", "segment", "Z", "N", "M_MeV", "rp0_fm", "rn0_fm"],
    meta_fields=["model", "component_names", "component_flavour", "component_antineutrino",
                 "isotope_names", "kind", "grid_keV", "common_nodes"],
)


def _check_grid(name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of recoil energies in keV, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf ({arr[~np.isfinite(arr)][:3]}); give finite energies in keV")
    if np.any(arr <= 0):
        raise ValueError(f"{name} has non-positive values ({arr[arr <= 0][:3]} keV); recoil energies must be > 0")
    return arr


def _component_integrals(comp, E_R, M, kinematics) -> np.ndarray:
    """int dE Phi(E) w(E, E_R) for the three weights at recoil nodes E_R (MeV) -> (3, P)."""
    if isinstance(comp, LineComponent):
        w = kinematic_weights(np.full_like(E_R, comp.energy), E_R, M, kinematics, xp=np)
        return comp.flux * np.stack(w)
    if not isinstance(comp, ContinuousComponent):
        raise TypeError(f"unknown flux component type {type(comp).__name__}")
    iv = np.asarray(subintervals(comp.breakpoints, comp.max_step))  # (I, 2)
    out = np.zeros((3, E_R.size))
    e_min = E_nu_min(E_R, M, xp=np)
    chunk = max(1, 200_000 // (iv.shape[0] * _GL_X.size))
    for s in range(0, E_R.size, chunk):
        er = E_R[s:s + chunk, None, None]
        lo = np.maximum(iv[None, :, 0], e_min[s:s + chunk, None])[..., None]  # (p, I, 1)
        width = np.maximum(iv[None, :, 1, None] - lo, 0.0)
        E = lo + 0.5 * (_GL_X + 1.0) * width  # (p, I, G)
        phi = comp.density(E.ravel()).reshape(E.shape)
        w = kinematic_weights(np.maximum(E, 1e-300), er, M, kinematics, xp=np)
        jac = 0.5 * width * _GL_W
        for k in range(3):
            out[k, s:s + chunk] = np.sum(phi * w[k] * jac, axis=(1, 2))
    return out


def _kink_energies(components, M) -> np.ndarray:
    """Recoil energies [MeV] where a spectrum has a kink or jump: E_R,max of every breakpoint/line."""
    e = []
    for c in components:
        e.extend([c.energy] if isinstance(c, LineComponent) else list(c.breakpoints))
    e = np.unique(np.asarray(e, float))
    e = e[e > 0]
    return np.unique(E_R_max(e, M))


def _bin_nodes(edges_MeV, kinks_MeV, nodes_per_bin):
    """Gauss-Legendre nodes in each bin, split at kinks; returns E_R, weights (MeV), bin index."""
    x, w = np.polynomial.legendre.leggauss(nodes_per_bin)
    er, wt, seg = [], [], []
    for b, (lo, hi) in enumerate(zip(edges_MeV[:-1], edges_MeV[1:])):
        inner = kinks_MeV[(kinks_MeV > lo * (1 + 1e-12)) & (kinks_MeV < hi * (1 - 1e-12))]
        cuts = np.concatenate([[lo], inner, [hi]])
        for a, c in zip(cuts[:-1], cuts[1:]):
            er.append(0.5 * (c - a) * x + 0.5 * (c + a))
            wt.append(0.5 * (c - a) * w)
            seg.append(np.full(nodes_per_bin, b))
    return np.concatenate(er), np.concatenate(wt), np.concatenate(seg)


class FluxValidityWarning(UserWarning):
    """Recoils that the analysis uses are reached by neutrinos below where a flux component starts."""


def warn_truncated_flux(target: Target, components, threshold_keV: float) -> None:
    """Warn (:class:`FluxValidityWarning`) when a continuous component starts at E_lo > 0 (e.g. the
    Huber-Mueller fits at 2 MeV) while recoils above ``threshold_keV`` are also reached by neutrinos
    below E_lo (E_R < E_R,max(E_lo) of the lightest isotope): the rate there lacks that part."""
    M = target.mass_MeV
    for c in components:
        e_lo = float(c.breakpoints[0]) if isinstance(c, ContinuousComponent) else 0.0
        if e_lo <= 0:
            continue
        er = np.asarray(E_R_max(np.full_like(M, e_lo), M)) / KEV  # keV
        t = int(np.argmax(er))
        if threshold_keV < er[t]:
            warnings.warn(
                f"flux component {c.name!r} starts at E_nu = {e_lo:g} MeV, but {target.names[t]} recoils from "
                f"{threshold_keV:.3g} keV (the threshold) up to {er[t]:.3g} keV are also made by neutrinos below "
                f"{e_lo:g} MeV, which this source lacks: the rate there is too low. For a reactor use "
                "Reactor.with_low_energy_tables (spec: [source] low_energy_tables = true), or a threshold "
                f"above {er[t]:.3g} keV", FluxValidityWarning, stacklevel=3)
            return


def prepare(target: Target | str, source: Source, *, E_R_keV: Sequence[float] | None = None,
            bin_edges_keV: Sequence[float] | None = None, model: CrossSectionModel | None = None,
            nodes_per_bin: int = 8, common_nodes: bool = False, split_at_kinks: bool = True,
            threshold_keV: float | None = None) -> RateKernels:
    """Integrate the source over E_nu once, for spectra at ``E_R_keV`` or counts in ``bin_edges_keV``.

    Give exactly one of ``E_R_keV`` (points, for dR/dE_R) or ``bin_edges_keV`` (bins, for counts;
    Gauss-Legendre with ``nodes_per_bin`` nodes, split at the kinematic kinks of the source).
    ``common_nodes`` puts the same recoil nodes under every isotope (split at the kinks of all of
    them), so that per-node rates can be summed over isotopes before a detector response;
    ``split_at_kinks=False`` skips the splitting (for fine grids under a smearing response).
    ``threshold_keV`` (default: the lowest grid energy) is the lowest recoil energy the analysis
    uses: a :class:`FluxValidityWarning` is raised when neutrinos below where a flux component
    starts (2 MeV for the default reactor fits) make recoils above it (:func:`warn_truncated_flux`).
    """
    model = model or CrossSectionModel()
    if isinstance(target, str):
        target = Target.from_formula(target)
    if (E_R_keV is None) == (bin_edges_keV is None):
        raise ValueError("give exactly one of E_R_keV (spectrum points) or bin_edges_keV (counts in bins)")
    if not isinstance(nodes_per_bin, int) or nodes_per_bin < 1:
        raise ValueError(f"nodes_per_bin={nodes_per_bin!r} must be a positive integer (8 is accurate to ~1e-10)")
    comps = tuple(source.components())
    if not comps:
        raise ValueError("source has no flux components")
    M = target.mass_MeV
    n_iso = M.size
    if E_R_keV is not None:
        grid = _check_grid("E_R_keV", E_R_keV)
        kind = "points"
        nodes = [(grid * KEV, np.ones_like(grid), np.arange(grid.size)) for _ in range(n_iso)]
    else:
        grid = _check_grid("bin_edges_keV", bin_edges_keV)
        if grid.size < 2 or np.any(np.diff(grid) <= 0):
            raise ValueError(f"bin_edges_keV must have >= 2 strictly increasing values, got {grid[:5]}...")
        kind = "bins"
        kinks = (lambda m: _kink_energies(comps, m)) if split_at_kinks else (lambda m: np.empty(0))
        if common_nodes:
            all_kinks = np.unique(np.concatenate([kinks(m) for m in M]))
            nodes = [_bin_nodes(grid * KEV, all_kinks, nodes_per_bin)] * n_iso
        else:
            nodes = [_bin_nodes(grid * KEV, kinks(M[t]), nodes_per_bin) for t in range(n_iso)]
        nodes = [(e, w / KEV, s) for e, w, s in nodes]  # weights in keV
    warn_truncated_flux(target, comps, float(grid[0]) if threshold_keV is None else float(threshold_keV))
    n_nodes = max(len(e) for e, _, _ in nodes)
    E_R = np.empty((n_iso, n_nodes))
    W = np.zeros((n_iso, n_nodes))
    S = np.zeros((n_iso, n_nodes), dtype=np.int32)
    for t, (e, w, s) in enumerate(nodes):
        E_R[t, : e.size], W[t, : e.size], S[t, : e.size] = e, w, s
        E_R[t, e.size:] = e[-1]  # padding: zero weight
        S[t, e.size:] = s[-1]

    # per-isotope normalisation: N_T/kg * G_F^2 M/pi * (hbar c)^2 [cm^2/MeV] * s/day * MeV/keV
    base = target.nuclei_per_kg() * G_F**2 * M / math.pi * HBARC2_MEV2_CM2 * SECONDS_PER_DAY * KEV
    K = np.zeros((len(comps), n_iso, 3, n_nodes))
    for c, comp in enumerate(comps):
        for t in range(n_iso):
            K[c, t] = base[t] * _component_integrals(comp, E_R[t], M[t], model.kinematics)

    rp, rn = model.rms_radii_fm(target.names, [i.element for i in target.isotopes], target.A)
    col = lambda a: jnp.asarray(np.asarray(a, float)[:, None])
    return RateKernels(
        K=jnp.asarray(K), E_R_MeV=jnp.asarray(E_R), weight_keV=jnp.asarray(W), segment=jnp.asarray(S),
        Z=col(target.Z), N=col(target.N), M_MeV=col(M), rp0_fm=col(rp), rn0_fm=col(rn),
        model=model,
        component_names=tuple(c.name for c in comps),
        component_flavour=tuple(int(c.flavour) for c in comps),
        component_antineutrino=tuple(bool(c.antineutrino) for c in comps),
        isotope_names=target.names, kind=kind, grid_keV=tuple(float(g) for g in grid),
        common_nodes=bool(common_nodes or kind == "points"),
    )


@jax.jit
def node_rates(params: PhysicsParams, kernels: RateKernels, flux_scale=None):
    """dR/dE_R [events/(kg day keV)] per component and isotope at the recoil nodes: (n_comp, n_iso, n_nodes)."""
    C_vec, C_sca, C_mag = coefficients(params, kernels.model, kernels.E_R_MeV, kernels.Z, kernels.N,
                                       kernels.M_MeV, kernels.rp0_fm, kernels.rn0_fm)
    anti = np.asarray(kernels.component_antineutrino, dtype=int)
    flav = np.asarray(kernels.component_flavour, dtype=int)
    K = kernels.K
    rate = K[:, :, 0] * C_vec[anti, flav] + K[:, :, 1] * C_sca[None] + K[:, :, 2] * C_mag[flav]
    if flux_scale is not None:
        flux_scale = jnp.asarray(flux_scale)
        if flux_scale.shape != (kernels.n_components,):
            raise ValueError(
                f"flux_scale has shape {flux_scale.shape}; it needs one entry per flux component "
                f"{kernels.component_names}"
            )
        rate = rate * flux_scale[:, None, None]
    return rate


def _reduce(per_node, kernels, by):
    """Sum node contributions into output segments, keeping the axis named by ``by``."""
    if kernels.kind == "points":  # nodes are the points themselves, weight 1
        per = per_node
    else:
        weighted = per_node * kernels.weight_keV  # (C, T, n)
        n_out = kernels.n_out
        seg = jax.vmap(lambda w, s: jax.ops.segment_sum(w.T, s, num_segments=n_out, indices_are_sorted=True).T,
                       in_axes=(1, 0), out_axes=1)
        per = seg(weighted, kernels.segment)  # (C, T, n_out)
    if by is None:
        return per.sum(axis=(0, 1))
    if by == "isotope":
        return per.sum(axis=0)
    if by == "component":
        return per.sum(axis=1)
    if by == "flavour":
        idx = np.asarray(kernels.component_flavour) + 3 * np.asarray(kernels.component_antineutrino, int)
        return jax.ops.segment_sum(per.sum(axis=1), idx, num_segments=6)
    raise ValueError(f"by={by!r}; use None, 'isotope', 'component' or 'flavour' (6 rows: e, mu, tau, anti-e, anti-mu, anti-tau)")


@partial(jax.jit, static_argnames="by")
def recoil_spectrum(params: PhysicsParams, kernels: RateKernels, flux_scale=None, by=None):
    """dR/dE_R [events/(kg day keV)] at the prepared points; ``by`` keeps one axis."""
    if kernels.kind != "points":
        raise ValueError("recoil_spectrum needs kernels prepared with E_R_keV=...; these are binned (use binned_rate)")
    return _reduce(node_rates(params, kernels, flux_scale), kernels, by)


@partial(jax.jit, static_argnames="by")
def binned_rate(params: PhysicsParams, kernels: RateKernels, flux_scale=None, by=None):
    """Events / (kg day) in each prepared recoil bin; ``by`` keeps one axis."""
    if kernels.kind != "bins":
        raise ValueError("binned_rate needs kernels prepared with bin_edges_keV=...; these are points (use recoil_spectrum)")
    return _reduce(node_rates(params, kernels, flux_scale), kernels, by)


@partial(jax.jit, static_argnames="by")
def expected_counts(params: PhysicsParams, kernels: RateKernels, exposure_kg_day, flux_scale=None, by=None):
    """Expected events in each recoil bin for an exposure [kg day]."""
    return binned_rate(params, kernels, flux_scale, by) * exposure_kg_day
