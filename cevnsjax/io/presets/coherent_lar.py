"""COHERENT CENNS-10 liquid argon, Analysis A (arXiv:2003.10630; release arXiv:2006.12659): data loader.

Preset ``coherent_lar_2020`` (``coherent_lar_2020.toml``). The release (:mod:`cevnsjax.io.releases.coherent_lar_2020`)
gives 3-D histograms in reconstructed energy [keVee] x F90 x trigger time [us] (12 x 8 x 10): the data
(3752 events, no background subtraction) and the collaboration's expected counts for 13.8e22 POT
(CEvNS 128, prompt BRN 497, delayed BRN 33, steady state 3152). The loader

* checks the spec against the release (argon target, the release's energy and time bins, POT,
  distance and mass, template names) and raises :class:`~cevnsjax.io.spec.SpecError` otherwise;
* attaches the data summed over F90 -- **F90 is not modelled** (the efficiency table already
  includes the F90 cuts, and the release's CEvNS template fills F90 0.5-0.9 completely) -- and,
  for an energy-only observable, over time as well (Poisson counts);
* fills the background templates named in the spec (``brn_prompt``, ``brn_delayed``, ``ss_bkg``)
  with the release's templates, projected the same way; ``scale = 1`` is the release's prediction;
* builds the arrival-time PDFs that the spec leaves out (:func:`sns_arrival_time_pdf`): the yaml's
  POT trace (Gaussian, mean 440 ns, width 150 ns) convolved with exp(tau_pi) for the prompt nu_mu and
  with exp(tau_pi) * exp(tau_mu) for the delayed nu_e and anti-nu_mu;
* replaces a tabulated efficiency (keVee, applied to the *reconstructed* energy in the release's
  recipe) by :class:`BinEfficiency`: its average over each 10-keVee bin, weighted with the CEvNS
  spectrum of each flux component at this experiment's nominal parameters
  (:func:`spectrum_weighted_bin_efficiency`).

Why the last step: :func:`cevnsjax.experiment.predict` multiplies counts by ``efficiency(bin centre)``.
With 10 keVee bins and an efficiency that rises from 0 to 0.9 inside the first bin, that gives
174 CEvNS events instead of 136 (time-integrated). The weighted average is exact at the nominal
physics for any flux scales and time bins (one row per component: in 0-10 keVee the prompt nu_mu
sees 0.403, nu_e 0.416, anti-nu_mu 0.442). Parameters that change the spectral shape *inside* a
10-keVee bin make it approximate: the QF moved by its +-1 sigma (a +- 0.006) changes the 0-10 keVee
counts by 0.1% while the fixed average errs by 0.8%. The exact treatment needs the efficiency
inside the response (P(bin | E_true) = sum over sub-bins of eps(sub-bin) P(sub-bin | E_true)) in
experiment.py.

Timing: the release's CEvNS template uses one time distribution for all energies (companion,
section 5: "use included CEvNS PDFs to determine F90 and timing distributions for each E_ee,reco
bin"); here the time PDFs are per flux component, so the prompt/delayed mix varies with energy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import log_ndtr, ndtr

from cevnsjax.detector.backgrounds import Template
from cevnsjax.detector.response import ArrivalTimePDF, TabulatedEfficiency
from cevnsjax.experiment import Experiment, Observable, Observed, predict
from cevnsjax.io.registry import SpecError, register_loader
from cevnsjax.io.releases.coherent_lar_2020 import load_coherent_lar_2020
from cevnsjax.physics.constants import SECONDS_PER_DAY
from cevnsjax.physics.nuclei import parse_formula
from cevnsjax.sources import PionDAR

__all__ = ["TEMPLATES", "TAU_PI_US", "TAU_MU_US", "PROMPT_COMPONENTS", "DELAYED_COMPONENTS", "BinEfficiency",
           "sns_arrival_time_pdf", "sns_arrival_time_cdf", "spectrum_weighted_bin_efficiency", "load_into"]

#: background template name in the spec -> field of :class:`cevnsjax.io.releases.coherent_lar_2020.LAr2020`
TEMPLATES = {"brn_prompt": "brn_prompt", "brn_delayed": "brn_delayed", "ss_bkg": "ss_bkg"}
TAU_PI_US = 0.026033  # pi+ mean life [us] (PDG 26.033 ns)
TAU_MU_US = 2.1969811  # mu+ mean life [us] (PDG)
PROMPT_COMPONENTS = ("prompt_numu",)
DELAYED_COMPONENTS = ("delayed_nue", "delayed_numubar")
_REL_TOL = 1e-3  # exposure inputs must match the release to 0.1% (the templates are absolute counts)
_SUB_BINS = 40  # sub-bins per observable bin for the efficiency average (0.25 keVee for 10 keVee bins)


# ------------------------------------------------------------------------------------------ timing
def _exgauss_cdf(t, mu, sigma, tau):
    """CDF of Gaussian(mu, sigma) + Exponential(tau): Phi(z) - exp(-(t-mu)/tau + sigma^2/2tau^2) Phi(z - sigma/tau)."""
    z = (t - mu) / sigma
    return ndtr(z) - np.exp(-(t - mu) / tau + 0.5 * (sigma / tau) ** 2 + log_ndtr(z - sigma / tau))


def sns_arrival_time_cdf(t_us, delayed: bool, mean_us: float = 0.44, width_us: float = 0.15,
                         tau_pi_us: float = TAU_PI_US, tau_mu_us: float = TAU_MU_US) -> np.ndarray:
    """Fraction of neutrinos arriving before ``t_us`` (host-side NumPy): POT Gaussian (mean, width)
    convolved with exp(tau_pi) (prompt) or with exp(tau_pi) and exp(tau_mu) (delayed; the sum of two
    exponentials has density (e^{-t/tau_mu} - e^{-t/tau_pi})/(tau_mu - tau_pi))."""
    t = np.asarray(t_us, float)
    if not delayed:
        return _exgauss_cdf(t, mean_us, width_us, tau_pi_us)
    return (tau_mu_us * _exgauss_cdf(t, mean_us, width_us, tau_mu_us)
            - tau_pi_us * _exgauss_cdf(t, mean_us, width_us, tau_pi_us)) / (tau_mu_us - tau_pi_us)


def sns_arrival_time_pdf(delayed: bool, mean_us: float = 0.44, width_us: float = 0.15, *, t_min_us: float = -3.0,
                         t_max_us: float = 60.0, dt_us: float = 0.01) -> ArrivalTimePDF:
    """Binned arrival-time PDF (``dt_us`` bins from ``t_min_us`` to ``t_max_us``) of
    :func:`sns_arrival_time_cdf`. The bins hold the exact CDF differences, so fractions in windows whose
    edges lie on the grid are exact; the mass outside [t_min, t_max] (< 1e-11 for the defaults) is
    dropped by the renormalisation in :class:`ArrivalTimePDF`. Defaults: LArParametersAnlA.yaml
    ``snsPOTTraceTiming`` (a = 440 +- 200 ns, b = 150 ns). Within [-0.1, 4.9) us: prompt 0.99991,
    delayed 0.86679."""
    if not (width_us > 0 and dt_us > 0 and t_max_us > t_min_us):
        raise ValueError(f"sns_arrival_time_pdf: need width_us > 0, dt_us > 0 and t_max_us > t_min_us; got "
                         f"{width_us}, {dt_us}, [{t_min_us}, {t_max_us}]")
    n = int(round((t_max_us - t_min_us) / dt_us))
    edges = t_min_us + dt_us * np.arange(n + 1)
    prob = np.diff(sns_arrival_time_cdf(edges, delayed, mean_us, width_us))
    return ArrivalTimePDF(edges, np.maximum(prob, 0.0))


# ------------------------------------------------------------------------------------------ efficiency
@jax.tree_util.register_dataclass
@dataclass(frozen=True, eq=False)
class BinEfficiency:
    """Efficiency per observable bin, optionally per flux component: ``values`` (traced) of shape
    (n_bins,) or (n_components, n_bins) are returned for the bin centres that
    :func:`cevnsjax.experiment.predict` passes; ``edges`` (static) are kept for reference.

    The (n_components, n_bins) form relies on ``predict`` multiplying the signal of shape
    (component, energy bin) by ``efficiency(bin centres)`` before the time fractions (experiment.py,
    ``comp = comp * theta.efficiency(...)``); tests/test_preset_coherent_lar.py checks it. Calling it
    with anything but the n_bins bin centres raises."""

    values: jax.Array
    edges: tuple = field(metadata=dict(static=True))

    def __call__(self, x):
        x = jnp.asarray(x)
        v = jnp.asarray(self.values)
        if x.shape != v.shape[-1:]:
            raise ValueError(f"BinEfficiency holds one value per observable bin ({v.shape[-1]} bins); "
                             f"it cannot be evaluated at points of shape {x.shape}")
        return v


def spectrum_weighted_bin_efficiency(experiment: Experiment, efficiency, sub_bins: int = _SUB_BINS,
                                     per_component: bool = True) -> BinEfficiency:
    """Average of ``efficiency`` (a function of the observable, e.g. keVee) over each observable bin,
    weighted with the experiment's signal (nominal parameters, efficiency off, time-integrated) in
    ``sub_bins`` equal sub-bins per bin, evaluated at the sub-bin centres; one row per flux component
    (``per_component``, exact for any flux scales and time bins at nominal physics) or one row for
    the summed signal. Bins without signal get the plain average over the sub-bins."""
    edges = np.asarray(experiment.observable.edges)
    sub = np.concatenate([np.linspace(lo, hi, sub_bins + 1)[:-1] for lo, hi in zip(edges[:-1], edges[1:])]
                         + [edges[-1:]])
    obs = Observable(experiment.observable.kind, tuple(sub), renormalise_positive=experiment.observable.renormalise_positive)
    fine = dataclasses.replace(experiment, observable=obs, observed=None,
                               defaults=experiment.defaults.replace(efficiency=None, backgrounds=()))
    prep = fine.prepare()
    # per-component signal (C, n_sub): the flux scales select one component at a time
    n_comp = len(prep.kernels.component_names)
    theta = fine.defaults
    rows = [np.asarray(predict(theta.replace(flux_scale=jnp.eye(n_comp)[i] * jnp.asarray(theta.flux_scale)), prep).signal)
            for i in range(n_comp)] if per_component else [np.asarray(predict(theta, prep).signal)]
    s = np.stack(rows).reshape(len(rows), -1, sub_bins)
    eps = np.asarray(efficiency(0.5 * (sub[1:] + sub[:-1]))).reshape(-1, sub_bins)
    tot = s.sum(axis=-1)
    ok = tot > 1e-12 * max(float(tot.max()), 1e-300)
    vals = np.where(ok, (eps * s).sum(axis=-1) / np.where(ok, tot, 1.0), eps.mean(axis=-1))
    return BinEfficiency(jnp.asarray(vals if per_component else vals[0]), tuple(map(float, edges)))


# ------------------------------------------------------------------------------------------ loader
def _check_close(what, have, want, unit):
    if not np.isclose(have, want, rtol=_REL_TOL, atol=0.0):
        raise SpecError(f"coherent_lar_2020: {what} = {have:.6g} {unit}, the release has {want:.6g} {unit}; the "
                        "data and the background templates are for the release's exposure (set the spec to it)")


def _check_edges(name, have, want, unit, fix):
    have = np.asarray(have, float)
    if have.shape != want.shape or not np.allclose(have, want, rtol=0, atol=1e-9):
        raise SpecError(f"coherent_lar_2020: {name} must be the release's {want.size - 1} bins "
                        f"{np.array2string(want, separator=', ')} {unit}, got {np.array2string(have, separator=', ')}; {fix}")


@register_loader("coherent_lar_2020")
def load_into(path, spec: dict, experiment: Experiment, pending) -> Experiment:
    """Attach the CENNS-10 Analysis-A data (summed over F90), its background templates, arrival-time
    PDFs and the bin-averaged efficiency to ``experiment``; see the module docstring."""
    name = "coherent_lar_2020"
    try:
        elements = set(parse_formula(experiment.target))
    except ValueError as err:
        raise SpecError(f"{name}: target.formula: {err}") from None
    if elements != {"Ar"}:
        raise SpecError(f"{name}: target.formula = {experiment.target!r}; the CENNS-10 data are for argon: use \"Ar\"")
    obs = experiment.observable
    if obs.kind != "E_ee_keV":
        raise SpecError(f"{name}: detector.observable = {obs.kind!r}; the release is binned in reconstructed "
                        "energy: use \"E_ee_keV\"")

    d = load_coherent_lar_2020(path)
    _check_edges("detector edges", obs.edges, d.e_edges_kevee, "keVee", "use bins = { start = 0.0, stop = 120.0, n = 12 }")
    if obs.time_edges_us is not None:
        _check_edges("detector.time_edges_us", obs.time_edges_us, d.t_edges_us, "us",
                     "copy them from coherent_lar_2020.toml, or delete time_edges_us for an energy-only observable")

    src = experiment.source
    if not isinstance(src, PionDAR):
        raise SpecError(f"{name}: source must be type = \"pion_dar\" with nu_per_flavour_per_proton, "
                        f"protons_per_second and distance_m; got {type(src).__name__}")
    _check_close("POT (source.protons_per_second x exposure.live_days x 86400 s)",
                 src.protons_per_second * experiment.live_days * SECONDS_PER_DAY, d.pot, "POT")
    _check_close("source.distance_m", src.distance_m, d.distance_m, "m")
    _check_close("target.mass_kg", experiment.mass_kg, d.fiducial_mass_kg, "kg")

    # 3-D [energy, f90, time] -> the modelled dimensions (F90 never modelled)
    def project(a):
        a = np.asarray(a).sum(axis=1)
        return a if obs.time_edges_us is not None else a.sum(axis=1)

    backgrounds = list(experiment.defaults.backgrounds)
    seen = set()
    for _tag, tname, scale in pending:
        if tname not in TEMPLATES:
            raise SpecError(f"{name}: background template {tname!r} is not in the release; use names "
                            f"{', '.join(TEMPLATES)} (prompt BRN, delayed BRN, steady state)")
        if tname in seen:
            raise SpecError(f"{name}: background template {tname!r} is given twice")
        seen.add(tname)
        backgrounds.append(Template(scale, project(getattr(d, TEMPLATES[tname])), name=tname))
    names = [b.name for b in backgrounds]
    if len(set(names)) != len(names):
        raise SpecError(f"{name}: background names {names} must be unique")

    if obs.time_edges_us is not None:  # arrival-time PDFs the spec does not give
        have = dict(obs.time_pdfs)
        tm = d.parameters["snsPOTTraceTiming"]["parameters"]
        mean_us, width_us = (float(p["value"]) * 1e-3 for p in tm)  # yaml: a, b in ns
        for comp in src.component_names:
            if comp not in have:
                have[comp] = sns_arrival_time_pdf(comp in DELAYED_COMPONENTS, mean_us, width_us)
        obs = dataclasses.replace(obs, time_pdfs=tuple(have.items()))
        experiment = dataclasses.replace(experiment, observable=obs)

    defaults = experiment.defaults.replace(backgrounds=tuple(backgrounds))
    experiment = dataclasses.replace(experiment, defaults=defaults)
    if isinstance(defaults.efficiency, TabulatedEfficiency):
        eff = spectrum_weighted_bin_efficiency(experiment, defaults.efficiency)
        experiment = dataclasses.replace(experiment, defaults=defaults.replace(efficiency=eff))

    counts = project(d.data_counts)
    label = "CENNS-10 Analysis A, counts per (E_ee, t_trig) bin, summed over F90" if obs.time_edges_us is not None \
        else "CENNS-10 Analysis A, counts per E_ee bin, summed over F90 and t_trig"
    return dataclasses.replace(experiment, observed=Observed(counts.astype(float), likelihood="poisson", label=label))
