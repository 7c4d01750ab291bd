"""Indirect quenching-factor measurement with Dresden-II: SM CEvNS, modified Lindhard (k, q), 7 background nuisances.

Data and likelihood: the Dresden-II Rx-ON daily rates (130 bins of 10 eV, 0.2-1.5 keVee, Colaresi et
al., PRL 129, 211802) with the preset ``dresden_ii`` (flux 4.8e13 /cm^2/s, Ge resolution, Klein-Nystrand
form factor), Gaussian chi^2 with the released errors and the published background
A + B exp(-C E) + L1/L2/M electron-capture lines (7 parameters; a_M ~ N(1, 0.03), the only
constraint term, as in DRESDEN_II.md section 4). The preset's tabulated (iron-filter) QF is replaced
by the modified Lindhard model of Sorensen (PRD 91, 083509): Q = k g(eps)/(1 + k g(eps)) - q/eps,
capped at Q <= 1 (cevnsjax.detector.quenching.ModifiedLindhard). "chi^2" below is -2 ln L including the
constraint terms (so it is the Gaussian chi^2 plus the a_M and, in (b), the k pull).

The spectrum alone does not pin k (k and q are strongly degenerate: with k and q both free and k
flat in [0.10, 0.30] the best fit runs to the k = 0.30 edge), so two treatments of k are reported:

(a) ``k_fixed``: k = 0.157, the Lindhard value for Ge (0.133 Z^(2/3) A^(-1/2)).
(b) ``k_prior``: k ~ N(0.162, 0.004), the CONUS+ determination (Nature 2025, Ext. Data Fig. 6;
    REFERENCE.md section 4). Why this prior: it is the most precise Ge k from data above the
    region where the q term matters (so it constrains k without already containing the
    low-energy enhancement that q describes), it agrees with the Lindhard value 0.157 within
    1.3 sigma, and the older CONUS 2020 statement (k = 0.18 used, k > 0.27 disfavoured) is much
    weaker. ``--k-prior broad`` instead uses k ~ Uniform(0.14, 0.20), spanning Lindhard, CONUS+
    and the CONUS 2020 working value; expect k to move towards 0.20 then (the k-q degeneracy).

For each treatment: the best fit (``JointModel.fit``, compiled once per model), the
fit with q = 0 and Delta chi^2 = chi^2(q = 0) - chi^2(best) with its Wilks significance
(cevnsjax.stats.fit.compare, 1 dof), a profile of q (``JointModel.profile``), and the NUTS posterior of all parameters
(q ~ Uniform(-5e-4, 3e-4); background amplitudes flat within the limits of DRESDEN_II.md section 3,
dense mass matrix, started at the best fit). NUTS samples q through the complementary log-log link
``q_z`` of :func:`cevnsjax.analyses.dresden_ii.q_link` (same prior and posterior; the q posterior is a peak
plus a flat plateau up to
the prior edge, which the default logit coordinate samples ~2x less efficiently); the posterior files
hold both ``q`` and ``q_z``.

    python models/dresden_ii_quenching.py --num-samples 1000 --num-warmup 500 --num-chains 2 \\
        --seed 0 --out out_dresden_ii_quenching

Writes to --out: summary.json, posterior_k_fixed.nc and posterior_k_prior.nc (PosteriorResult.save,
ArviZ netCDF), spectrum.png (data minus best-fit background vs the CEvNS signal for the best fits and
q = 0), profile_q.png, corner_k_fixed.png, corner_k_prior.png. ``--quick`` uses a 9-point q profile,
one fit start, NUTS max_tree_depth 5 and no prior draws, and skips the flat-k and iron-filter (Fef)
reference fits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cevnsjax.analyses.dresden_ii import (
    BKG,
    K_LINDHARD,
    K_PRIORS,
    background_priors,
    build_model,
    components,
    sampling_init,
    sampling_model,
)
from cevnsjax.reporting import Timer, fit_summary, posterior_summary, write_json


def analyse(case, args, out, timings):
    """Fits, profile and NUTS for one k treatment; returns (summary dict, model, best fit, null fit)."""
    from cevnsjax.stats.fit import compare

    k_prior = None if case == "k_fixed" else args.k_prior
    model = build_model(k_prior)
    with Timer() as t:
        best = model.fit(n_starts=1 if args.quick else 4, seed=args.seed)
        null = model.fit(init=best.best_fit, fixed={"q": 0.0})
        test = compare(null, best)
    timings[f"{case}_fits_s"] = round(t.s, 2)
    grid = np.linspace(-4.5e-4, 1.0e-4, 9 if args.quick else 23)
    with Timer() as t:
        prof = model.profile("q", grid, init=best.best_fit, best=best)
    timings[f"{case}_profile_s"] = round(t.s, 2)
    s = {"k_treatment": ("fixed at the Lindhard value 0.157" if k_prior is None else K_PRIORS[k_prior][3]),
         "priors": {k: repr(v) for k, v in model.priors.items()},
         "best_fit": fit_summary(best), "fit_q0": fit_summary(null),
         "delta_chi2_q0_vs_best": test.delta_chi2, "significance_sigma": test.significance, "p_value": test.p_value,
         "profile_q": {"grid": grid, "delta_chi2": prof.delta_chi2,  # relative to the profile's minimum
                       "interval68": prof.interval(0.6827), "interval95": prof.interval(0.95)}}
    from cevnsjax.stats.infer import run_nuts

    with Timer() as t:
        res = run_nuts(sampling_model(model), obs=model.observed(), num_warmup=args.num_warmup,
                       num_samples=args.num_samples, num_chains=args.num_chains, seed=args.seed, progress_bar=False,
                       dense_mass=True, init_values=sampling_init(model, best.best_fit), chain_method="vectorized",
                       max_tree_depth=5 if args.quick else 10, num_prior_samples=0 if args.quick else None)
    timings[f"{case}_nuts_s"] = round(t.s, 2)
    nc = out / f"posterior_{case}.nc"
    res.save(nc)
    qs = res.posterior["q"].ravel()
    s["posterior"] = posterior_summary(res, list(model.priors))  # q, not its sampling coordinate q_z
    s["posterior_P(q<0)"] = float(np.mean(qs < 0))
    s["nuts"] = {"divergences": res.num_divergences, "converged": bool(res.converged),
                 "sampling_time_s": res.attrs["sampling_time_s"],
                 "mean_steps": float(np.mean(res.groups["sample_stats"]["n_steps"]))}
    s["netcdf"] = nc.name
    if not args.no_plots:
        names = (["k"] if k_prior else []) + ["q", BKG + "A", BKG + "B", BKG + "C"]
        fig = res.plot_corner(out / f"corner_{case}.png", var_names=names, bins=25)
        fig.clf()
        s["figures"] = [f"corner_{case}.png"]
    return s, model, best, null, prof


def fef_reference(timings):
    """chi^2 of the preset's tabulated iron-filter QF (direct measurement, Collar et al. 2021), same backgrounds."""
    import cevnsjax as cj

    with Timer() as t:
        model = cj.JointModel([cj.Analysis(cj.load_preset("dresden_ii"), priors=background_priors())])
        r = model.fit()
    timings["fef_fit_s"] = round(t.s, 2)
    return {"qf": "tabulated Fef (iron filter), Collar et al. PRD 103, 122003", "chi2": r.minus2lnL,
            "converged": r.converged, "params": r.best_fit}


def plot_spectrum(path, model_a, best_a, null_a, model_b, best_b):
    from matplotlib.figure import Figure

    a = model_a.analyses[0]
    edges = np.asarray(a.experiment.observable.edges)
    c = 0.5 * (edges[1:] + edges[:-1])
    y, err = np.asarray(a.experiment.observed.values), np.asarray(a.experiment.observed.errors)
    sig_a, bkg_a = components(model_a, best_a.best_fit)
    sig_0, bkg_0 = components(model_a, null_a.best_fit)
    sig_b, _ = components(model_b, best_b.best_fit)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    ax.errorbar(c, y - bkg_a, err, fmt="k.", ms=3, lw=0.7, label="data - background (best fit a)")
    step = lambda v: np.append(v, v[-1])
    pa = best_a.best_fit
    ax.step(edges, step(sig_a), where="post", color="C3", label=f"(a) k=0.157, q={pa['q']:.2g}")
    ax.step(edges, step(sig_0), where="post", color="C0", ls="--", label="(a) k=0.157, q=0")
    pb = best_b.best_fit
    ax.step(edges, step(sig_b), where="post", color="C2", ls=":", label=f"(b) k={pb['k']:.3f}, q={pb['q']:.2g}")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlim(0.2, 0.6)
    ax.set_ylim(-1.5, 4)
    ax.set_xlabel(r"$E_{ee}$ [keV]")
    ax.set_ylabel("counts / day / 10 eV")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_profiles(path, profs):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 3.6))
    ax = fig.subplots()
    for (label, pr), col in zip(profs.items(), ("C3", "C2")):
        ax.plot(np.asarray(pr.values).ravel() * 1e4, pr.delta_chi2, "-o", ms=3, color=col, label=label)
    ax.axhline(1, color="grey", lw=0.5)
    ax.axhline(3.84, color="grey", lw=0.5, ls="--")
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel(r"$q \times 10^4$")
    ax.set_ylabel(r"$\Delta\chi^2$ (profiled)")
    ax.set_ylim(0, 12)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)



# -------------------------------------------------------------------------------------- command line
def make_parser(doc, *, num_samples=1000, num_warmup=500, num_chains=2):
    """numpyro-examples style options: --num-samples/--num-warmup/--num-chains/--seed/--out/--quick/--no-plots."""
    import argparse

    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0], epilog=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=num_samples, help=f"NUTS draws per chain (default {num_samples})")
    p.add_argument("--num-warmup", type=int, default=num_warmup, help=f"NUTS warmup steps per chain (default {num_warmup})")
    p.add_argument("--num-chains", type=int, default=num_chains, help=f"NUTS chains (default {num_chains})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=None, help="output folder (default out_<script name>)")
    p.add_argument("--quick", action="store_true", help="smaller grids and fewer fit starts (CI smoke test)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    return p


def setup(args, script):
    """float64, matplotlib Agg, checked sampler counts; creates and returns the output folder."""
    import matplotlib

    import cevnsjax as cj

    matplotlib.use("Agg")
    cj.enable_x64()
    for name in ("num_samples", "num_chains"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.num_warmup < 0:
        raise SystemExit(f"--num-warmup must be >= 0, got {args.num_warmup}")
    out = Path(args.out or f"out_{Path(script).stem}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(args):
    out = setup(args, __file__)
    timings = {}
    with Timer() as total:
        summary = {"script": Path(__file__).name, "command": " ".join(["python", "models/" + Path(__file__).name] + sys.argv[1:]),
                   "settings": {k: v for k, v in vars(args).items()},
                   "data": "Dresden-II Rx-ON 0.2-1.5 keVee (130 bins), Gaussian chi^2 with released errors",
                   "chi2": "-2 ln L incl. constraint terms (a_M ~ N(1, 0.03); in k_prior also the k prior if Gaussian)"}
        sa, model_a, best_a, null_a, prof_a = analyse("k_fixed", args, out, timings)
        sb, model_b, best_b, null_b, prof_b = analyse("k_prior", args, out, timings)
        summary["k_fixed"], summary["k_prior"] = sa, sb
        # the k-q degeneracy: k free and flat (fit only; skipped with --quick)
        with Timer() as t:
            if not args.quick:
                mf = build_model(None, extra_priors={"k": ("uniform", 0.10, 0.30)})
            fb = None if args.quick else mf.fit(init={"k": K_LINDHARD, **best_a.best_fit}, n_starts=3, seed=args.seed)
        timings["k_flat_fit_s"] = round(t.s, 2)
        if fb is not None:
            summary["k_flat_0.10_0.30_fit"] = {"best_fit": fit_summary(fb),
                                               "note": "k unconstrained by the spectrum: runs to the prior edge"}
        if not args.quick:
            summary["fef_reference"] = fef_reference(timings)
        figures = []
        if not args.no_plots:
            plot_spectrum(out / "spectrum.png", model_a, best_a, null_a, model_b, best_b)
            plot_profiles(out / "profile_q.png", {"(a) k = 0.157": prof_a, f"(b) k prior {args.k_prior}": prof_b})
            figures = ["spectrum.png", "profile_q.png"] + sa.get("figures", []) + sb.get("figures", [])
        summary["figures"] = figures
    timings["total_s"] = round(total.s, 2)
    summary["timings"] = timings
    write_json(out / "summary.json", summary)
    for case in ("k_fixed", "k_prior"):
        s = summary[case]
        p = s["posterior"]["q"]
        print(f"[{case}] best q = {s['best_fit']['params']['q']:.3e} +- {s['best_fit']['errors']['q']:.2e}, "
              f"k = {s['best_fit']['params'].get('k', K_LINDHARD):.4f}, chi2 = {s['best_fit']['chi2']:.3f}; "
              f"Delta chi2(q=0) = {s['delta_chi2_q0_vs_best']:.3f} ({s['significance_sigma']:.2f} sigma); "
              f"posterior q mean {p['mean']:.3e}, 68% {p['q68'][0]:.2e}..{p['q68'][1]:.2e}, "
              f"r_hat {p.get('r_hat', float('nan')):.3f}")
    print(f"wrote {out / 'summary.json'} in {total.s:.1f} s")
    return summary


if __name__ == "__main__":
    p = make_parser(__doc__, num_samples=1000, num_warmup=500, num_chains=2)
    p.add_argument("--k-prior", choices=sorted(K_PRIORS), default="conus_plus",
                   help="prior on k for treatment (b) (default conus_plus: N(0.162, 0.004))")
    main(p.parse_args())
