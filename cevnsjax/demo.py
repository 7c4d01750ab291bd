"""The main job: SM spectra of CsI, Ge and Ar, and a Bayesian fit of a simulated reactor experiment.

1. Standard-Model recoil spectra (CSV + PNG) of CsI, Ge and Ar at a reactor (2.96 GW at 10.39 m;
   Huber-Mueller fits on 2-8 MeV, the package default) and at the SNS (COHERENT 2017 beam). The
   reactor spectra start at 0.25 keV: below E_R,max(E_nu = 2 MeV) (0.07 keV for I, 0.12 keV for Ge,
   0.21 keV for Ar) neutrinos under 2 MeV, which the built-in fits lack, also contribute (the
   low-energy tables need the data folder: ``Reactor.with_low_energy_tables``).
2. A simulated experiment: 10 kg Ge for one year at 20 m from a 3.9 GW reactor, modified-Lindhard
   quenching (Sorensen 1412.3028) with true k = 0.157, q = -1e-4, Dresden-II-like resolution, a
   flat background of 5 counts/(keVee kg day), bins 0.2-1.0 keVee. NUTS samples k, q, the flux
   normalisation, a light Z' coupling (m_Z' = 10 MeV, universal) and the background jointly; the
   InferenceData (netCDF), a corner plot, the spectrum with its posterior-predictive band and a
   summary table are written.

Everything it needs ships with the package (no data folder).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from cevnsjax.analyses.dresden_ii import sampling_init, sampling_model
from cevnsjax.detector.backgrounds import Flat
from cevnsjax.detector.quenching import ModifiedLindhard
from cevnsjax.detector.response import GeResolution
from cevnsjax.experiment import Experiment, ExperimentParams, Observable, Observed, RecoilGrid
from cevnsjax.io.outdir import atomic_path, atomic_write_json, atomic_write_text
from cevnsjax.physics.params import PhysicsParams
from cevnsjax.rates import prepare, recoil_spectrum
from cevnsjax.sources import PionDAR, Reactor
from cevnsjax.stats.infer import ConvergenceWarning, LogNormal, TruncatedNormal, Uniform, convergence_report
from cevnsjax.stats.model import Analysis, JointModel

__all__ = ["run_demo", "spectra", "simulated_experiment", "TARGETS", "TRUTH"]

TARGETS = ("CsI", "Ge", "Ar")
#: recoil ranges [keV]; the reactor one starts above every target's 2 MeV recoil edge (see the module docstring)
GRIDS_KEV = {"reactor": (0.25, 3.0), "pion_dar": (0.1, 120.0)}
#: thresholds of the integrated rates in the summary [keV]
SUMMARY_THRESHOLD_KEV = {"reactor": 0.25, "pion_dar": 1.0}
TRUTH = {"k": 0.157, "q": -1.0e-4, "flux_norm": 1.0, "g_zprime": 0.0, "bkg.flat.rate": 5.0}
PRIORS = {
    "k": TruncatedNormal(0.157, 0.02, 0.08, 0.25),   # a direct-measurement-like prior: the spectrum alone does not pin k
    "q": Uniform(-3.0e-4, 2.0e-4),
    "flux_norm": LogNormal(1.0, 0.05),               # reactor flux normalisation, 5 %
    "g_zprime": Uniform(-2.0e-5, 2.0e-5),            # universal Z' coupling at m_Z' = 10 MeV; the rate depends on
                                                     # g^2 only, so a symmetric range avoids a boundary at g = 0
    "bkg.flat.rate": Uniform(0.0, 20.0),             # counts / (keVee kg day)
}


def _write_atomic(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def spectra(source_name: str, n_points: int = 200):
    """E_R grid [keV] and {target: dR/dE_R [events/(kg day keV)]} for one source."""
    source = Reactor.dresden_ii() if source_name == "reactor" else PionDAR.coherent_csi_2017()
    lo, hi = GRIDS_KEV[source_name]
    er = np.geomspace(lo, hi, n_points)
    params = PhysicsParams()
    return er, {t: np.asarray(recoil_spectrum(params, prepare(t, source, E_R_keV=er))) for t in TARGETS}


def simulated_experiment(seed: int = 0) -> tuple[Experiment, dict]:
    """The demo's Ge experiment with Poisson data drawn at TRUTH."""
    theta = ExperimentParams(
        physics=PhysicsParams(m_zprime_MeV=10.0), flux_scale=jnp.ones(4),
        quenching=ModifiedLindhard(32.0, 72.63, k=0.157, q=0.0), resolution=GeResolution(),
        backgrounds=(Flat(5.0, name="flat"),))
    exp = Experiment("simulated_ge", "Ge", 10.0, 365.25, Reactor(3.9, 20.0),
                     Observable("E_ee_keV", tuple(np.linspace(0.2, 1.0, 41))), RecoilGrid(0.05, 3.0, 60, 2), theta,
                     description="10 kg Ge, 1 yr, 20 m from 3.9 GW; simulated at k=0.157, q=-1e-4")
    model = JointModel([Analysis(exp, PRIORS)])
    mu = np.asarray(model.expected(TRUTH)[exp.name])
    counts = np.random.default_rng(seed).poisson(mu).astype(float)
    return exp.__class__(**{**exp.__dict__, "observed": Observed(counts, label="simulated counts")}), {"expected": mu}


def _spectra_part(out: Path, n_points: int, lines: list) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    written = []
    for name, title in (("reactor", "Reactor 2.96 GW at 10.39 m"), ("pion_dar", "SNS pion DAR at 19.3 m")):
        er, rates = spectra(name, n_points)
        header = "E_R_keV," + ",".join(f"{t}_events_per_kg_day_keV" for t in TARGETS)
        rows = "\n".join(",".join(f"{v:.8e}" for v in (e, *(rates[t][i] for t in TARGETS))) for i, e in enumerate(er))
        csv = out / f"spectra_{name}.csv"
        _write_atomic(csv, header + "\n" + rows + "\n")
        fig, ax = plt.subplots(figsize=(6, 4))
        for t in TARGETS:
            ax.loglog(er, np.where(rates[t] > 0, rates[t], np.nan), label=t)
        ax.set_xlabel("nuclear recoil energy E_R [keV]")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))  # plain numbers, no overlap
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks([t for t in (0.1, 0.3, 1, 3, 10, 30, 100) if er[0] <= t <= er[-1]])
        ax.set_ylabel("dR/dE_R [events / (kg day keV)]")
        ax.set_title(f"SM CEvNS, {title}")
        ax.legend()
        ax.grid(alpha=0.3, which="both")
        png = out / f"spectra_{name}.png"
        fig.tight_layout()
        with atomic_path(png) as tmp:
            fig.savefig(tmp, dpi=120)
        plt.close(fig)
        written += [csv, png]
        for t in TARGETS:
            thr = SUMMARY_THRESHOLD_KEV[name]
            m = er >= thr
            lines.append(f"{name:9s} {t:4s} E_R > {thr:7.3f} keV: {np.trapezoid(rates[t][m], er[m]):.4e} events/(kg day)")
    return written


def run_demo(out_dir, n_points: int = 200, num_warmup: int = 1000, num_samples: int = 1500, num_chains: int = 4,
             seed: int = 0, progress_bar: bool = True, target_accept_prob: float = 0.99) -> list[Path]:
    """Write the demo's outputs to ``out_dir`` (see the module docstring); returns the paths written.

    NUTS settings: the Z' coupling's posterior is flat-topped (the rate depends on g^2), which needs
    small steps: with 500 warm-up steps, 750 draws and target_accept_prob 0.95 the chains ended with
    divergences or r_hat(|g|) ~ 1.013 (measured 2026-12-05); 1000 / 1500 / 0.99 converge (~2.5 min on 2 cores)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    lines: list[str] = []
    written = _spectra_part(out, n_points, lines)

    exp, info = simulated_experiment(seed)
    model = JointModel([Analysis(exp, PRIORS)])
    fit = model.fit(n_starts=4)
    with warnings.catch_warnings():  # stated in the summary instead
        warnings.simplefilter("ignore", ConvergenceWarning)
        # q through the complementary log-log link of the Dresden-II analysis (same posterior; the logit
        # coordinate of a flat q prior gave divergences and r_hat > 1.01 here), chains started at the MLE
        res = model.sample(model_fn=sampling_model(model), num_warmup=num_warmup, num_samples=num_samples,
                           num_chains=num_chains, seed=seed, progress_bar=progress_bar, chain_method="vectorized",
                           dense_mass=True, target_accept_prob=target_accept_prob,
                           init_values=sampling_init(model, fit.best_fit))
    # The likelihood depends on g_zprime^2 only: the sign of g is not identified and the chains may share the
    # two mirror halves unevenly, which is not a convergence failure. Convergence is tested on |g| instead.
    res.groups["posterior"]["abs_g_zprime"] = np.abs(np.asarray(res.groups["posterior"]["g_zprime"]))
    tested = [n for n in res.latent_sites if n != "g_zprime"] + ["abs_g_zprime"]
    nuts = convergence_report(res, var_names=tested)
    nc = out / "posterior.nc"
    with atomic_path(nc) as tmp:
        res.save(tmp)
    with atomic_path(out / "corner.png") as tmp:
        res.plot_corner(tmp, var_names=list(PRIORS), truths=TRUTH)
    with atomic_path(out / "spectrum.png") as tmp:
        res.plot_spectrum(tmp, edges=np.asarray(exp.observable.edges), xlabel="E_ee [keVee]")
    summary = res.summary()
    _write_atomic(out / "summary.csv", summary.to_csv())
    post = res.groups["posterior"]
    table = {k: {"truth": TRUTH[k], "mean": float(np.mean(post[k])), "sd": float(np.std(post[k])),
                 "q05": float(np.quantile(post[k], 0.05)), "q95": float(np.quantile(post[k], 0.95)),
                 "mle": float(fit.params[k])} for k in PRIORS}
    g_abs = np.asarray(post["abs_g_zprime"])
    limit = float(np.quantile(g_abs, 0.9)) if nuts["converged"] else None  # no limit from an unconverged chain
    report = {"g_zprime_abs_90pc_upper_limit": limit, "experiment": exp.description,
              "converged": nuts["converged"], "convergence_failures": nuts["failures"],
              "divergences": int(res.num_divergences), "sampling_time_s": res.attrs["sampling_time_s"],
              "total_time_s": round(time.perf_counter() - t_start, 2), "parameters": table,
              "sm_rates": lines}
    atomic_write_json(out / "summary.json", report)
    text = [f"# {exp.description}", f"# NUTS {num_chains} chains x {num_samples} draws; converged: {nuts['converged']}",
            f"{'parameter':15s} {'truth':>11s} {'mean':>11s} {'sd':>10s} {'90% interval':>26s}"]
    for k, r in table.items():
        text.append(f"{k:15s} {r['truth']:11.4g} {r['mean']:11.4g} {r['sd']:10.3g}   [{r['q05']:.4g}, {r['q95']:.4g}]")
    if limit is not None:
        text.append(f"|g_zprime| < {limit:.3g} (90% credible, m_Z' = 10 MeV)")
    else:
        text.append(f"no limit on |g_zprime|: NUTS did not converge ({'; '.join(nuts['failures'])}); rerun with "
                    "larger --num-warmup and --num-samples")
    text += [""] + lines + [f"total time {report['total_time_s']} s"]
    _write_atomic(out / "summary.txt", "\n".join(text) + "\n")
    written += [nc, out / "corner.png", out / "spectrum.png", out / "summary.csv", out / "summary.json",
                out / "summary.txt"]
    return written
