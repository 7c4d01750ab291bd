"""COHERENT CsI[Na] 2017 and 2021: CEvNS signal strength, sin^2 theta_W, nu_e NSI and the CsI neutron radius.

Binned Poisson likelihood on the released beam-on coincidence (C) counts, PE x arrival time
(presets ``coherent_csi_2017`` / ``coherent_csi_2021`` of cevnsjax, loaders in
``cevnsjax/experiments/coherent_csi.py``), one NumPyro model per physics question, each with the
same nuisances. Every question is answered three ways: maximum likelihood (Hessian errors), a
profile likelihood of the parameter(s) of interest, and NUTS (posterior -> netCDF).

    python models/coherent_csi.py --dataset both --num-samples 1000 --num-warmup 500 --num-chains 2 --out out_csi

Options: ``--dataset`` 2017 | 2021 | both (each data set on its own, default) | joint (one fit of
both with shared physics; NOTE the full data set of 2021 CONTAINS the 2017 data, so the joint fit
double-counts those events and is for illustration only); ``--fits`` a comma list of
``signal`` (signal_scale = N_CEvNS / N_SM), ``sin2`` (sin^2 theta_W), ``nsi`` (eps_u_ee, eps_d_ee),
``rn`` (delta_rn_fm; R_n = Klein-Nystrand default rms + delta_rn_fm, with the proton rms radii set
to the muonic-atom values 4.804 fm (Cs) / 4.749 fm (I) as in Cadeddu et al. PRL 120, 072501,
arXiv:1710.02730, whose 2017 fit gives R_n = 5.5 +0.9 -1.1 fm). ``rn`` is run twice: with our full
nuisances and "cadeddu_like" (QF and acceptance fixed, 11.2 % normalisation = flux 10 % (+) acceptance 5 %;
that setting is recalled from the paper, not verified here). ``--quick`` shrinks the profile
grids (41 -> 13 points, NSI 31x31 -> 9x9).

Nuisance parameters and their priors (all Gaussian constraint terms in the likelihood):

2017 (release arXiv:1804.09459, coherent_parameters.yaml):
  flux_norm                   N(1, 0.10)  (r = 0.08 +- 0.008 nu/flavour/POT); 0.112 for sin2/nsi, adding
                              the Science paper's 5 % form-factor uncertainty (not for signal / rn)
  quenching.value             N(0.0878, 0.0166), truncated at 0.03 (yaml csiQF; the light yield
                              13.348 +- 0.019 PE/keVee is degenerate with it and negligible)
  efficiency.a, efficiency.x0 N(0.6655, 0.030), N(10.8507, 0.29) (yaml, asymmetric errors symmetrised)
  bkg.prompt_neutrons.scale   N(1, 0.25) (yaml)
  bkg.steady_state.scale      N(1, 1/sqrt(N_AC)) = N(1, 0.031); template = the anti-coincidence (AC)
                              beam-on grid SMOOTHED as the product of its PE and time marginals
                              (the raw AC grid has ~2 counts per cell; used as an exact template it
                              would understate the background's statistical uncertainty)
2021 (release arXiv:2110.07730):
  flux_norm                   N(1, 0.10) (r = 0.0848, 10 %); 0.112 for sin2/nsi (+5 % form factor)
  resolution.a                N(0.0749, 0.0019): 2.5 % light-yield (PE scale) nuisance, equivalent
                              in signal rate (+-3.2 %) to the two +-1 sigma QF curves of
                              scintRespCoefficients.txt added in quadrature (+-1.0 %, +-3.0 %)
  efficiency.c                N(10.8646, 1.02): the +-1 sigma rows of effCoefficients.txt shift the
                              turn-on by -1.02 / +1.02 PE (signal +9.2 % / -9.3 %; c +-1.02 gives +-10 %)
  bkg.brn.scale, bkg.nin.scale N(1, 0.25), N(1, 0.70) truncated at 0 (BarbeauGroup chi2_pull_test
                              config: normalisations 18.4 and 5.6 events; NOT in the release)
  bkg.steady_state.scale      N(1, 1/sqrt(1295)) = N(1, 0.028), smoothed AC template as for 2017

Writes to --out: summary.json (every figure below), posterior_<dataset>_<fit>.nc (ArviZ netCDF),
spectrum_<dataset>.png (PE and time projections, best fit), profile_<fit>.png, nsi_<dataset>.png.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cevnsjax.analyses.coherent_csi import build, load_experiment, poi_priors, proton_shift
from cevnsjax.reporting import Timer, fit_summary, posterior_summary, write_json

FITS = ("signal", "sin2", "nsi", "rn")
DATASETS = {"2017": ("coherent_csi_2017",), "2021": ("coherent_csi_2021",),
            "both": ("coherent_csi_2017", "coherent_csi_2021"), "joint": ("coherent_csi_2017", "coherent_csi_2021")}
#: Cadeddu et al., PRL 120, 072501 (2018), COHERENT 2017 data: R_n = 5.5 +0.9 -1.1 fm (seed talk)
CADEDDU_RN = {"value_fm": 5.5, "plus_fm": 0.9, "minus_fm": 1.1}
#: published COHERENT numbers (REFERENCE.md §8; [R] = recalled there, not verified)
PUBLISHED = {"coherent_csi_2017": {"observed": "134 +- 22", "sm": "173 +- 48"},
             "coherent_csi_2021": {"observed": "306 +- 20", "sm": "341 +- 11 (th) +- 42 (exp)",
                                   "sin2_theta_w": "0.220 +0.028 -0.026"}}
SHORT = {"coherent_csi_2017": "2017", "coherent_csi_2021": "2021"}


def model(jm, obs=None):
    """The NumPyro model (numpyro example style): ``jm`` a cevnsjax JointModel, ``obs`` the counts per
    experiment name (None: draw them)."""
    return jm(obs=obs)


# ------------------------------------------------------------------------------------------ analysis
def run_fit(jm, pois, grid_n, quick, seed):
    """MLE (Hessian errors) and a profile of each parameter of interest (1-D) or of the pair (2-D)."""
    best = jm.fit(n_starts=2 if quick else 4, seed=seed)
    bounds = jm.bounds()
    out = {"mle": fit_summary(best)}
    prof = {}
    if len(pois) == 1:
        p = pois[0]
        lo, hi = bounds[p]
        v, e = best.best_fit[p], best.errors.get(p, np.nan)
        w = 4.0 * e if np.isfinite(e) and e > 0 else 0.25 * (hi - lo)
        a, b = max(lo + 1e-6 * (hi - lo), v - w), min(hi - 1e-6 * (hi - lo), v + w)
        grid = np.linspace(a, b, grid_n)
        if p == "signal_scale":  # add the no-CEvNS point: its Delta chi^2 is the significance
            grid = np.unique(np.r_[lo, grid])
        pr = jm.profile(p, grid, init=best.best_fit)
        prof[p] = pr
        i68, i90, i95 = pr.interval(0.6827), pr.interval(0.90), pr.interval(0.9545)
        out["profile"] = {p: {"grid": grid, "delta_chi2": pr.delta_chi2, "best": best.best_fit[p],
                              "interval68": i68, "interval90": i90, "interval2sigma": i95,
                              "grid_edge_hit": bool(pr.delta_chi2[0] < 1.0 or pr.delta_chi2[-1] < 1.0)}}
    else:
        gx = np.linspace(-1.0 + 1e-6, 1.0 - 1e-6, grid_n)
        X, Y = np.meshgrid(gx, gx, indexing="ij")
        pr = jm.profile(list(pois), np.stack([X.ravel(), Y.ravel()], -1), init=best.best_fit)
        prof[tuple(pois)] = pr
        d = np.asarray(pr.delta_chi2).reshape(X.shape)
        out["profile"] = {"x": pois[0], "y": pois[1], "grid": gx, "delta_chi2": d,
                          "allowed_fraction_90cl": float(np.mean(d < 4.605)),
                          "sm_delta_chi2": float(_interp2(gx, gx, d, 0.0, 0.0))}
    return best, prof, out


def _interp2(x, y, z, x0, y0):
    from scipy.interpolate import RegularGridInterpolator

    return RegularGridInterpolator((x, y), z)([[x0, y0]])[0]


def run_nuts(jm, args, seed, predictive):
    from cevnsjax.stats.infer import run_nuts as _run

    init = jm.init_values()
    return _run(model, jm, obs=jm.observed(), num_samples=args.num_samples, num_warmup=args.num_warmup,
                num_chains=args.num_chains, seed=seed, progress_bar=False, init_values=init,
                chain_method="sequential" if args.num_chains > 1 else "vectorized",
                num_prior_samples=None if predictive else 0, posterior_predictive=predictive)


def radius_report(fit_out, post, rn0_mean, poi="delta_rn_fm"):
    """R_n [fm] (mean of Cs and I) = default rms + delta_rn_fm, from the profile and the posterior."""
    pr = fit_out["profile"][poi]
    out = {"R_n_default_fm": rn0_mean,
           "profile": {"best_fm": rn0_mean + pr["best"], "interval68_fm": [rn0_mean + x for x in pr["interval68"]],
                       "interval90_fm": [rn0_mean + x for x in pr["interval90"]]}}
    if post is not None:
        s = post[poi]
        out["posterior"] = {"median_fm": rn0_mean + s["median"], "q68_fm": [rn0_mean + x for x in s["q68"]],
                            "q95_fm": [rn0_mean + x for x in s["q95"]]}
    b, lo, hi = out["profile"]["best_fm"], *out["profile"]["interval68_fm"]
    out["text"] = (f"R_n = {b:.2f} +{hi - b:.2f} -{b - lo:.2f} fm (profile, 68 % CL); Cadeddu et al.: "
                   f"{CADEDDU_RN['value_fm']} +{CADEDDU_RN['plus_fm']} -{CADEDDU_RN['minus_fm']} fm")
    return out


# -------------------------------------------------------------------------------------------- plots
def plot_spectrum(path, e, prep, jm, best_values, name):
    import matplotlib.pyplot as plt

    from cevnsjax import predict

    a = [x for x in jm.analyses if x.experiment.name == name][0]
    pr = predict(jm.theta(a, best_values), a.prepared)
    obs = np.asarray(e.observed.values)
    pe, t = np.asarray(e.observable.edges), np.asarray(e.observable.time_edges_us)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, axis, edges, lab in ((axes[0], 1, pe, "PE"), (axes[1], 0, t, "arrival time [us]")):
        w = np.diff(edges)
        n, s, b = obs.sum(axis) / w, np.asarray(pr.signal).sum(axis) / w, np.asarray(pr.background).sum(axis) / w
        c = 0.5 * (edges[1:] + edges[:-1])
        ax.errorbar(c, n, yerr=np.sqrt(obs.sum(axis)) / w, fmt="ko", ms=3, label="C beam-on")
        ax.stairs(b, edges, color="C1", label="background (fit)")
        ax.stairs(b + s, edges, color="C0", label="total (fit)")
        ax.set_xlabel(lab)
        ax.set_ylabel("counts / unit")
    axes[0].legend(fontsize=7, frameon=False)
    fig.suptitle(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_profiles(path, curves, xlabel):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for lab, (x, d) in curves.items():
        ax.plot(x, d, label=lab)
    ax.axhline(1.0, color="k", lw=0.6, ls="--")
    ax.axhline(2.706, color="k", lw=0.6, ls=":")
    ax.set_ylim(0, 8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"$\Delta\chi^2$ (profile)")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_nsi(path, prof, samples, title):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3.6))
    g = np.asarray(prof["grid"])
    ax.contourf(g, g, np.asarray(prof["delta_chi2"]).T, levels=[0, 2.30, 4.61, 5.99], colors=["C0", "C9", "lightblue"])
    if samples is not None:
        ax.plot(samples["eps_u_ee"], samples["eps_d_ee"], ",", color="k", alpha=0.4)
    ax.plot(0, 0, "r*")
    ax.set_xlabel(r"$\epsilon_{ee}^{uV}$")
    ax.set_ylabel(r"$\epsilon_{ee}^{dV}$")
    ax.set_title(title + r": profile $\Delta\chi^2$ < 2.3/4.6/6.0, NUTS dots", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------------------------- main

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
    fits = [f.strip() for f in args.fits.split(",") if f.strip()]
    bad = [f for f in fits if f not in FITS]
    if bad:
        raise SystemExit(f"--fits: unknown {bad}; choose from {', '.join(FITS)}")
    names = DATASETS[args.dataset]
    groups = [names] if args.dataset == "joint" else [(n,) for n in names]
    grid1 = 13 if args.quick else 41
    grid2 = 9 if args.quick else 31

    summary = {"script": "coherent_csi", "dataset": args.dataset, "fits": fits,
               "settings": {k: getattr(args, k) for k in ("num_samples", "num_warmup", "num_chains", "seed", "quick")},
               "published": PUBLISHED, "cadeddu_rn_fm": CADEDDU_RN, "results": {}, "timing_s": {}}
    if args.dataset == "joint":
        summary["warning"] = ("the 2021 full data set contains the 2017 data: the joint fit double-counts those "
                              "events (illustration of a JointModel only)")
    experiments = {}
    with Timer() as t:
        for n in names:
            e, n_ac = load_experiment(n)
            experiments[n] = (e, n_ac, e.prepare())
    summary["timing_s"]["load_prepare"] = t.s

    for grp in groups:
        key = "joint" if len(grp) > 1 else SHORT[grp[0]]
        res = summary["results"].setdefault(key, {})
        # the SM prediction and the data
        import cevnsjax as cj

        for n in grp:
            e, n_ac, prep = experiments[n]
            p = cj.predict(e.defaults, prep)
            res.setdefault("counts", {})[SHORT[n]] = {
                "observed_total": float(e.observed.values.sum()), "sm_signal_total": float(np.sum(p.signal)),
                "background_total": float(np.sum(p.background)), "ac_steady_state_total": n_ac}
        prof_curves = {}
        for fit in fits:
            variants = ["full", "cadeddu_like"] if fit == "rn" else ["full"]
            for variant in variants:
                tag = fit if variant == "full" else f"{fit}_{variant}"
                with Timer() as t:
                    jm = build(grp, fit, experiments, variant)
                    pois = list(poi_priors(fit))
                    best, prof, fo = run_fit(jm, pois, grid2 if fit == "nsi" else grid1, args.quick, args.seed)
                t_fit = t.s
                post, samples = None, None
                with Timer() as t:
                    if variant == "full":
                        r = run_nuts(jm, args, args.seed, predictive=(fit == "signal" and not args.quick))
                        post = posterior_summary(r)
                        fo["nuts"] = {"summary": post, "divergences": r.num_divergences,
                                      "sampling_time_s": r.attrs.get("sampling_time_s"),
                                      "converged": bool(r.converged) if r.num_draws >= 4 else False}
                        r.save(out / f"posterior_{key}_{fit}.nc")
                        samples = r.samples(pois)
                t_nuts = t.s
                fo["timing_s"] = {"fit_profile": t_fit, "nuts": t_nuts}
                if fit == "signal":
                    for n in grp:
                        sm = res["counts"][SHORT[n]]["sm_signal_total"]
                        v = fo["mle"]["params"]["signal_scale"]
                        e_ = fo["mle"]["errors"].get("signal_scale", float("nan"))
                        res["counts"][SHORT[n]]["fitted_cevns"] = {"value": v * sm, "error": e_ * sm}
                    # significance of CEvNS: profile Delta chi^2 at signal_scale = 0 (Wilks, 1 dof)
                    from cevnsjax.stats.fit import significance

                    pr = fo["profile"]["signal_scale"]
                    fo["no_cevns_delta_chi2"] = float(pr["delta_chi2"][0])
                    fo["significance_sigma"] = significance(fo["no_cevns_delta_chi2"], 1)
                if fit == "rn":
                    rn0 = proton_shift(experiments[grp[0]][2])[2]
                    fo["radius"] = radius_report(fo, post, rn0)
                if fit != "nsi":
                    p0 = pois[0]
                    pr = fo["profile"][p0]
                    prof_curves.setdefault(fit, {})[f"{key} {variant}"] = (pr["grid"], pr["delta_chi2"])
                else:
                    if not args.no_plots:
                        plot_nsi(out / f"nsi_{key}.png", fo["profile"], samples, key)
                res[tag] = fo
                print(f"[{key}] {tag}: fit+profile {t_fit:.1f}s, NUTS {t_nuts:.1f}s", flush=True)
        if "signal" in fits and not args.no_plots:
            jm = build(grp, "signal", experiments)
            vals = res["signal"]["mle"]["params"]
            for n in grp:
                e, _, prep = experiments[n]
                plot_spectrum(out / f"spectrum_{SHORT[n]}{'_joint' if len(grp) > 1 else ''}.png", e, prep, jm, vals, n)
        if not args.no_plots:
            for fit, curves in prof_curves.items():
                xlab = {"signal": "signal strength", "sin2": r"$\sin^2\theta_W$", "rn": r"$\delta R_n$ [fm]"}[fit]
                plot_profiles(out / f"profile_{fit}_{key}.png", curves, xlab)
    write_json(out / "summary.json", summary)
    _print_headline(summary)
    return summary


def _print_headline(summary):
    for key, res in summary["results"].items():
        for tag, fo in res.items():
            if tag == "counts" or "mle" not in fo:
                continue
            prof = fo["profile"]
            if "x" in prof:
                print(f"{key:>5s} {tag:<18s} NSI: SM point Delta chi2 = {prof['sm_delta_chi2']:.2f}")
                continue
            (p, pr), = prof.items()
            b, (lo, hi) = pr["best"], pr["interval68"]
            print(f"{key:>5s} {tag:<18s} {p} = {b:.4g} +{hi - b:.3g} -{b - lo:.3g} (profile 68%)")
            if "radius" in fo:
                print("      " + fo["radius"]["text"])


if __name__ == "__main__":
    ap = make_parser(__doc__, num_samples=1000, num_warmup=500, num_chains=2)
    ap.add_argument("--dataset", choices=tuple(DATASETS), default="both",
                    help="2017, 2021, both (separately, default) or joint (double-counts the 2017 data)")
    ap.add_argument("--fits", default=",".join(FITS), help=f"comma list of {', '.join(FITS)} (default all)")
    main(ap.parse_args())
