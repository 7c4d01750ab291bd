"""A modified quenching factor mimics light new physics (Liao, Liu, Marfatia, arXiv:2104.01811; the talk's
"Mimic the signal of new physics").

Set-up (stated choices where the talk gives none):

* Ge detector, 7 kg yr (1 kg x 7 x 365.25 d), reactor 3.9 GW_th at 20 m (cevnsjax ``Reactor(3.9, 20.0)``:
  Day Bay fission fractions, Huber-Mueller 2-8 MeV; neutrinos below 2 MeV give E_R < 0.12 keVnr,
  E_ee < 0.07 keVee, but the resolution carries some of them over the threshold: ``--low-energy`` adds them,
  Kopeikin tables + 238U capture, +6 % events), Helm form factor, tree-level couplings.
* Observable E_ee from a 0.2 keVee threshold (``--threshold``) to 1.5 keVee in bins of 50 eV; Gaussian resolution
  as Dresden-II's Ge (sigma^2 = 68.5 eV^2 + 0.11 * 2.96 eV * E_ee), truncated at E_ee >= 0.
* Background: ``--bkg`` counts/(kg day keVee), flat (default 0: no background).
* Truth / Asimov data: SM with modified Lindhard k = 0.153, q = -15e-5.
* Fits with the standard Lindhard QF (k fixed at ``--k-std``, default 0.157 = Lindhard for Ge): SM only,
  SM + light Z' (g_zprime, m_zprime_MeV) and SM + light scalar (g_scalar, m_scalar_MeV), Poisson
  likelihood (chi^2 = 2 x deviance against the Asimov data, so the truth has chi^2 = 0). Each mediator
  fit scans m on a log grid (0.1-1000 MeV), fits g at each mass from several starts and refines the
  best point with (g, m) both free. NUTS
  gives the posterior on the Asimov data (log-uniform priors g in [1e-7, 1e-2], m in [0.1, 1000] MeV).

    python models/qf_mimics_new_physics.py --num-samples 1000 --num-warmup 500 --num-chains 2 \\
        --seed 0 --out out_qf_mimics_new_physics

Writes summary.json (best fits, chi^2, chi^2 per bin; posterior summaries), posterior_zprime.nc and
posterior_scalar.nc, spectrum.png (Asimov data and the best-fit spectra, with the ratio to the
SM + standard-Lindhard prediction) and chi2_vs_mass.png. ``--quick``: 9 mass points, NUTS for the Z'
only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cevnsjax.analyses.qf_mimics import K_TRUE, M_RANGE, MODELS, Q_TRUE, build, expected, fit_mediator, truth_counts
from cevnsjax.reporting import Timer, fit_summary, inside_bounds, posterior_summary, write_json


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
    masses = np.geomspace(*M_RANGE, 9 if args.quick else 33)
    timings = {}
    with Timer() as total:
        exp, obs = truth_counts(args)
        edges = np.asarray(exp.observable.edges)
        sm = build(None, args)
        name = sm.analyses[0].experiment.name
        o = {name: obs}
        if sm.priors:
            sm_fit = sm.fit(obs=o)
            sm_chi2, sm_vals = sm_fit.minus2lnL, sm_fit.best_fit
        else:
            sm_vals = {}
            sm_chi2 = float(sm.minus2lnL({}, o))
        mu_sm = expected(sm, sm_vals)
        res = {"truth": {"quenching": f"modified Lindhard k = {K_TRUE}, q = {Q_TRUE}", "counts": obs,
                         "total_counts": float(obs.sum()), "edges_keVee": edges},
               "sm_standard_lindhard": {"k": args.k_std, "chi2": sm_chi2, "counts": mu_sm,
                                        "total_counts": float(mu_sm.sum()), "ndof": int(obs.size - len(sm.priors))}}
        fitted = {}
        for w in MODELS:
            model, best, chi2_m = fit_mediator(w, args, obs, masses, timings)
            mu = expected(model, best.best_fit)
            fitted[w] = (model, best, mu, chi2_m)
            res[w] = {"best_fit": fit_summary(best), "chi2": best.minus2lnL, "ndof": int(obs.size - best.n_free),
                      "delta_chi2_vs_sm_std": sm_chi2 - best.minus2lnL, "counts": mu, "total_counts": float(mu.sum()),
                      "chi2_vs_mass": {"m_MeV": masses, "chi2": chi2_m}}
        bayes = {}
        for w in (["zprime"] if args.quick else list(MODELS)):
            model, best = fitted[w][0], fitted[w][1]
            with Timer() as t:
                r = model.sample(obs=o, num_warmup=args.num_warmup, num_samples=args.num_samples,
                                 num_chains=args.num_chains, seed=args.seed, progress_bar=False, dense_mass=True,
                                 init_values=inside_bounds(best.best_fit, model), max_tree_depth=5 if args.quick else 8,
                           num_prior_samples=0 if args.quick else None)
            timings[f"nuts_{w}_s"] = round(t.s, 2)
            r.save(out / f"posterior_{w}.nc")
            bayes[w] = {"netcdf": f"posterior_{w}.nc", "posterior": posterior_summary(r),
                        "divergences": r.num_divergences, "converged": bool(r.converged)}
        res["nuts"] = bayes
        figures = []
        if not args.no_plots:
            plot(out, edges, obs, mu_sm, fitted, masses, sm_chi2)
            figures = ["spectrum.png", "chi2_vs_mass.png"]
    timings["total_s"] = round(total.s, 2)
    summary = {"script": Path(__file__).name,
               "command": " ".join(["python", "models/" + Path(__file__).name] + sys.argv[1:]),
               "settings": vars(args),
               "setup": {"target": "Ge", "exposure_kg_yr": 7.0, "reactor": "3.9 GW_th, 20 m (Reactor(3.9, 20.0))",
                         "E_ee_bins_keV": {"start": args.threshold, "stop": 1.5, "width": 0.05},
                         "resolution": "Dresden-II Ge", "background_per_kg_day_keV": args.bkg,
                         "likelihood": "Poisson; chi2 = 2 x deviance vs Asimov (truth chi2 = 0)"},
               **res, "figures": figures, "timings": timings}
    write_json(out / "summary.json", summary)
    print(f"Asimov: {obs.sum():.0f} events; SM + std Lindhard (k={args.k_std}): chi2 = {sm_chi2:.2f} "
          f"({mu_sm.sum():.0f} events) for {obs.size} bins")
    for w in MODELS:
        b = res[w]["best_fit"]["params"]
        g, m = MODELS[w]
        print(f"{w:6s}: chi2 = {res[w]['chi2']:.3f} at {g} = {b[g]:.3e}, {m} = {b[m]:.3g}")
    print(f"wrote {out / 'summary.json'} in {total.s:.1f} s")
    return summary


def plot(out, edges, obs, mu_sm, fitted, masses, sm_chi2):
    from matplotlib.figure import Figure

    c = 0.5 * (edges[1:] + edges[:-1])
    step = lambda v: np.append(v, v[-1])
    fig = Figure(figsize=(6.0, 5.0))
    ax, rx = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    ax.errorbar(c, obs, np.sqrt(obs), fmt="k.", ms=3, label="Asimov: SM, mod. Lindhard (0.153, -15e-5)")
    ax.step(edges, step(mu_sm), where="post", color="grey", label="SM, std Lindhard")
    rx.errorbar(c, obs / np.maximum(mu_sm, 1e-30), np.sqrt(obs) / np.maximum(mu_sm, 1e-30), fmt="k.", ms=3)
    for (w, (_, best, mu, _)), col in zip(fitted.items(), ("C3", "C0")):
        ax.step(edges, step(mu), where="post", color=col, label=f"{w} + std Lindhard, chi2={best.minus2lnL:.2f}")
        rx.step(edges, step(mu / np.maximum(mu_sm, 1e-30)), where="post", color=col)
    ax.set_yscale("log")
    ax.set_ylabel("events / 50 eV")
    ax.legend(frameon=False, fontsize=7)
    rx.set_ylabel("ratio to SM std")
    rx.set_ylim(0, 6)
    rx.set_xlabel(r"$E_{ee}$ [keV]")
    fig.tight_layout()
    fig.savefig(out / "spectrum.png", dpi=100)

    fig = Figure(figsize=(5.0, 3.5))
    ax = fig.subplots()
    for (w, (_, _, _, chi2_m)), col in zip(fitted.items(), ("C3", "C0")):
        ax.semilogx(masses, chi2_m, "-o", ms=3, color=col, label=f"{w} (g profiled)")
    ax.axhline(sm_chi2, color="grey", ls="--", label="SM, std Lindhard")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("mediator mass [MeV]")
    ax.set_ylabel(r"$\chi^2$ vs Asimov")
    ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "chi2_vs_mass.png", dpi=100)


if __name__ == "__main__":
    p = make_parser(__doc__, num_samples=1000, num_warmup=500, num_chains=2)
    p.add_argument("--k-std", type=float, default=0.157, help="k of the standard Lindhard QF in the fits (default 0.157)")
    p.add_argument("--threshold", type=float, default=0.2, help="E_ee threshold in keVee (default 0.2; bins of 50 eV to 1.5)")
    p.add_argument("--low-energy", action="store_true", help="include the reactor flux below 2 MeV (data folder tables)")
    p.add_argument("--bkg", type=float, default=0.0, help="flat background, counts/(kg day keVee) (default 0)")
    main(p.parse_args())
