"""Light Z' and light scalar constraints from Dresden-II: standard Lindhard QF versus (k, q) marginalised.

Liao, Liu, Marfatia (arXiv:2202.10622; the talk's "Constraints on new physics"): with the standard
Lindhard QF the Dresden-II data mildly prefer new physics; marginalising over the (k, q) of the
modified Lindhard QF changes the constraints qualitatively. Same data, likelihood and background
model as ``dresden_ii_quenching.py`` (Gaussian chi^2 on the Rx-ON rates, 7 background nuisances,
a_M ~ N(1, 0.03)).

Models (universal couplings as in cevnsjax.physics.xsec; REFERENCE.md section 7):

* ``zprime``: light vector, coupling ``g_zprime`` (= sqrt(g_nu g_q)), mass ``m_zprime_MeV``;
  interferes destructively with the SM at small g, so at fixed mass Delta chi^2(g) can have a second
  allowed island (the sign-flipped weak charge).
* ``scalar``: light scalar, ``g_scalar``, ``m_scalar_MeV``; adds incoherently.

QF treatments:

* ``lindhard``: k = 0.157, q = 0 (ModifiedLindhard with q = 0 is the standard Lindhard model).
* ``kq``: k ~ N(0.162, 0.004) (CONUS+, see dresden_ii_quenching.py for the choice; ``--k-prior broad``
  for Uniform(0.14, 0.20)) and q ~ Uniform(-5e-4, 3e-4), profiled (frequentist) or marginalised (NUTS).

Frequentist: profile likelihood in mass slices. At each mass the coupling is scanned on a log grid
(every other parameter re-fitted); Delta chi^2(g) = chi^2(g) - min_g chi^2 at that mass; the 90 % (95 %)
CL allowed intervals are where Delta chi^2 < 2.71 (3.84) (ends refined by bisection) and the quoted upper
limit is the largest allowed coupling (for the Z' possibly the top of the sign-flipped island).

Bayesian: NUTS over (m, g) and all nuisances, m log-uniform in [0.1, 1000] MeV (sampled as log10 m) and, at
each m, g flat and symmetric on [-G(m), G(m)] (sampled as u = g / G(m) ~ Uniform(-1, 1); see
``bayes_model``). The rate depends on g^2 only, so g = 0 is an interior point; the flat prior makes the
limit a property of the likelihood (G(m) lies where Delta chi^2 is already large). The 90 % / 95 % upper
limits on |g| at each mass slice m_s come from the draws with |log10(m / m_s)| < 0.25, as quantiles of
|g| / G(m) times G(m_s). NUTS: dense mass matrix, target_accept_prob 0.95 (``--target-accept``; the
coupling posterior is a box with steep walls where the Z' / scalar rate takes over, which at 0.8 gave
~20 % divergent transitions), q through the link of ``cevnsjax.analyses.dresden_ii.q_link``. With the earlier
setup (log-uniform g and m, logit coordinates, target 0.8) NUTS did not converge (r_hat up to 1.36,
bulk ESS down to 5, 330-1190 divergences per 2000 draws). Remaining: for the Z' with (k, q) free the
posterior has a narrowing valley in (q, g) that runs into the q prior edge at -5e-4 (the sign-flipped
weak charge compensates the extra low-energy signal of a very negative q), which leaves ~1 % divergent
transitions and r_hat ~1.01 for g at the default settings.

    python models/dresden_ii_new_physics.py --num-samples 2000 --num-warmup 500 --num-chains 2 \\
        --seed 0 --out out_dresden_ii_new_physics

Writes summary.json, posterior_<model>_<qf>.nc, profiles.png (Delta chi^2 vs g per mass slice),
limits.png (90 % CL upper limit vs mass, both QF treatments; needs >= 2 masses), posterior_<model>_<qf>.png
(NUTS draws in the (m, |g|) plane). ``--quick``: one mass slice (10 MeV), 6 grid points per decade, NUTS
only for zprime/lindhard.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cevnsjax.analyses import dresden_ii as DQ
from cevnsjax.reporting import Timer, posterior_summary, write_json

MODELS = {"zprime": ("g_zprime", "m_zprime_MeV"), "scalar": ("g_scalar", "m_scalar_MeV")}
QFS = ("lindhard", "kq")
G_RANGE = (1e-7, 1e-3)
M_RANGE = (0.1, 1000.0)
G_OFF = 1e-12  # coupling used to switch a mediator off in the combined fit model (effect < 1e-20)
CL90 = 2.705543454095404  # chi2.ppf(0.90, 1)
CL95 = 3.841458820694124  # chi2.ppf(0.95, 1)
#: NUTS: at each mass, g ~ Uniform(-G(m), G(m)) with G(m) = G0 sqrt(1 + (m / m0)^2), (G0, m0 [MeV]) below:
#: G(m) tracks the mass dependence of the profile limits and lies at 1.6-2.5x them, where the profile
#: Delta chi^2 already exceeds 500 for both QF treatments (summary.json: ``delta_chi2_profile_at_prior_edge``,
#: ``max_abs_g_over_G``), so the flat-prior limits do not depend on G(m); an edge much further out only
#: makes the steep wall beyond the limit steeper in the sampler's coordinate (more divergences)
G_SCALE = {"zprime": (1.3e-5, 3.0), "scalar": (7.5e-6, 4.5)}
SLICE_HALF_WIDTH = 0.25  # decades of m around each mass slice whose NUTS draws give the Bayesian limit there


def _np_priors(which=("zprime", "scalar")):
    import cevnsjax as cj

    out = {}
    for w in which:
        g, m = MODELS[w]
        out[g] = cj.LogUniform(G_OFF if len(which) > 1 else G_RANGE[0], G_RANGE[1])
        out[m] = cj.LogUniform(*M_RANGE)
    return out


def build(qf: str, which=("zprime", "scalar"), k_prior: str = "conus_plus"):
    """JointModel: Dresden-II, backgrounds, the mediators in ``which`` and, for ``qf="kq"``, k and q."""
    return DQ.build_model(k_prior if qf == "kq" else None, extra_priors=_np_priors(which), free_q=(qf == "kq"))


def _off(which_on):
    """Fixed values switching off the other mediator."""
    out = {}
    for w, (g, m) in MODELS.items():
        if w != which_on:
            out[g], out[m] = G_OFF, 1000.0
    return out


def _point(prof, i):
    """Values (profiled name and re-fitted nuisances) at grid point ``i`` of a ProfileResult."""
    return {k: float(v[i]) for k, v in prof.best_fit.items()}


def scan_mass(model, start, which, mass, grid):
    """Profile chi^2 over the coupling grid at fixed mass (``JointModel.profile``); returns (chi2 array,
    minimum, best coupling, chi2 function of the coupling for the bisection)."""
    g, m = MODELS[which]
    fixed = {m: float(mass), **_off(which)}
    prof = model.profile(g, grid, fixed=fixed, init=start)
    chi2 = np.asarray(prof.minus2lnL, float)
    # free-coupling fit from the best grid point (refines the minimum)
    ib = int(np.argmin(chi2))
    at_best = _point(prof, ib)
    rb = model.fit(init=at_best, fixed=fixed)
    chi2_min = min(chi2.min(), rb.minus2lnL)
    g_best = rb.best_fit[g] if rb.minus2lnL <= chi2.min() else float(grid[ib])

    def chi2_at(gv):
        return model.fit(init={**at_best, g: float(gv)}, fixed={g: float(gv), **fixed}).minus2lnL

    return chi2, chi2_min, g_best, chi2_at


def limits_from_scan(grid, chi2, chi2_min, g_best, chi2_fn, n_bisect=10, level=CL90):
    """Allowed intervals in g (Delta chi^2 < ``level``, default 2.71: 90 % CL; ends refined by bisection in
    log g) and the upper limit (the largest allowed coupling: the top of the highest interval; for the Z' this
    can be the top of the sign-flipped island above an excluded gap)."""
    from cevnsjax.stats.fit import allowed_intervals

    # the refined best fit joins the grid, so an allowed interval exists even when the minimum lies
    # between coarse grid points (every grid point then has Delta chi^2 > 2.71)
    grid, chi2 = np.asarray(grid, float), np.asarray(chi2, float)
    if g_best is not None and np.isfinite(g_best) and grid[0] < g_best < grid[-1]:
        k = int(np.searchsorted(grid, g_best))
        grid, chi2 = np.insert(grid, k, g_best), np.insert(chi2, k, chi2_min)
    d = chi2 - chi2_min
    lg = np.log10(grid)

    def refine(i_in, i_out):
        a, b = lg[i_in], lg[i_out]
        for _ in range(n_bisect):
            c = 0.5 * (a + b)
            if chi2_fn(10 ** c) - chi2_min < level:
                a = c
            else:
                b = c
        return float(10 ** (0.5 * (a + b)))

    intervals = allowed_intervals(grid, d, level, refine)
    upper = max((hi for lo, hi in intervals), default=None)
    return intervals, upper


def frequentist(qf, args, masses, per_decade, timings):
    model = build(qf, k_prior=args.k_prior)
    sm_fix = {"g_zprime": G_OFF, "m_zprime_MeV": 1000.0, "g_scalar": G_OFF, "m_scalar_MeV": 1000.0}
    sm = model.fit(init=sm_fix, fixed=sm_fix, n_starts=1, seed=args.seed)
    n = int(round(per_decade * np.log10(G_RANGE[1] / G_RANGE[0]))) + 1
    grid = np.geomspace(*G_RANGE, n)
    out = {"sm_chi2": sm.minus2lnL, "sm_fit": sm.best_fit, "grid_g": grid, "models": {}}
    for w in MODELS:
        res = {}
        for mass in masses:
            chi2, cmin, gb, fn = scan_mass(model, sm.best_fit, w, mass, grid)
            intervals, upper = limits_from_scan(grid, chi2, cmin, gb, fn)
            intervals95, upper95 = limits_from_scan(grid, chi2, cmin, gb, fn, level=CL95)
            res[f"{mass:g}"] = {"m_MeV": mass, "g_best": gb, "chi2_min": cmin,
                                "delta_chi2_sm_vs_best": sm.minus2lnL - cmin,
                                "g_upper_90": upper, "allowed_90": intervals, "g_upper_95": upper95,
                                "allowed_95": intervals95, "delta_chi2": chi2 - cmin}
        out["models"][w] = res
    return out


def g_range(which, m):
    """Half-width G(m) of the NUTS prior g ~ Uniform(-G(m), G(m)) at mass ``m`` [MeV] (see ``G_SCALE``)."""
    import jax.numpy as jnp

    g0, m0 = G_SCALE[which]
    return g0 * jnp.sqrt(1.0 + (jnp.asarray(m) / m0) ** 2)


def bayes_model(which, qf, k_prior="conus_plus"):
    """(numpyro model, JointModel) for NUTS with mediator ``which`` and QF treatment ``qf``.

    Priors: ``log10_<m>`` ~ Uniform(-1, 3) (m log-uniform in [0.1, 1000] MeV, as in the profile scans' range)
    and ``<g>_u`` ~ Uniform(-1, 1) with ``<g> = <g>_u G(m)``: at each mass g is flat and symmetric about 0 on
    [-G(m), G(m)]. The rate depends on g only through g^2, so the sign is a symmetry and g = 0 (the SM) is an
    interior point, not a boundary. Sampling u = g / G(m) rather than g removes the funnel of (log m, g) (the
    allowed |g| grows ~ m above a few MeV), and a flat prior makes the upper limit a property of the likelihood
    (a log-uniform prior's limit moves with its arbitrary lower end because the likelihood is flat as g -> 0).
    Background, k and q priors are those of ``build``; q is sampled through ``dresden_ii_quenching.q_link``.
    The posterior holds the physical ``<g>``, ``<m>`` (and ``q``) as deterministic sites."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    from cevnsjax.experiment import predict

    jm = build(qf, which=(which,), k_prior=k_prior)
    g, m = MODELS[which]
    a = jm.analyses[0]
    if a.experiment.observed.likelihood == "poisson":
        raise ValueError("bayes_model expects the Gaussian Dresden-II likelihood")
    rest = {k: p for k, p in jm.priors.items() if k not in (g, m)}
    err = jnp.asarray(a.experiment.observed.errors)
    lo, hi = np.log10(M_RANGE)
    name = a.experiment.name

    def model(obs=None):
        v = {k: p.sample(k) for k, p in rest.items()}
        v[m] = numpyro.deterministic(m, 10.0 ** numpyro.sample(f"log10_{m}", dist.Uniform(lo, hi)))
        v[g] = numpyro.deterministic(g, numpyro.sample(f"{g}_u", dist.Uniform(-1.0, 1.0)) * g_range(which, v[m]))
        mu = predict(jm.theta(a, v), a.prepared).total
        numpyro.sample(f"obs_{name}", dist.Normal(mu, err).to_event(1), obs=None if obs is None else obs[name])

    return DQ.sampling_model(jm, model), jm


def bayesian(model_name, qf, args, out, timings, sm_best, masses):
    from cevnsjax.stats.infer import run_nuts

    fn, jm = bayes_model(model_name, qf, k_prior=args.k_prior)
    g, m = MODELS[model_name]
    init = DQ.sampling_init(jm, {k: v for k, v in sm_best.items() if k not in (g, m)})
    init.update({f"log10_{m}": 1.0, f"{g}_u": 0.05})
    with Timer() as t:
        res = run_nuts(fn, obs=jm.observed(), num_warmup=args.num_warmup, num_samples=args.num_samples,
                       num_chains=args.num_chains, seed=args.seed, progress_bar=False, dense_mass=True,
                       target_accept_prob=args.target_accept, init_values=init,
                       max_tree_depth=5 if args.quick else 10, num_prior_samples=0 if args.quick else None)
    timings[f"nuts_{model_name}_{qf}_s"] = round(t.s, 2)
    nc = out / f"posterior_{model_name}_{qf}.nc"
    res.save(nc)
    G, M = res.posterior[g].ravel(), res.posterior[m].ravel()
    U = np.abs(G) / np.asarray(g_range(model_name, M))
    slices = {}
    for ms in masses:  # Bayesian limits at the profile's mass slices: |g| / G(m) quantiles of the nearby draws
        sel = np.abs(np.log10(M / ms)) < SLICE_HALF_WIDTH
        n = int(sel.sum())
        G_ms = float(g_range(model_name, ms))
        slices[f"{ms:g}"] = {"m_MeV": ms, "n_draws": n,
                             "g_upper_90": float(np.quantile(U[sel], 0.90)) * G_ms if n >= 20 else None,
                             "g_upper_95": float(np.quantile(U[sel], 0.95)) * G_ms if n >= 20 else None}
    names = [k for k in jm.priors]
    diag = posterior_summary(res, names)
    conv = {k: (v.get("r_hat"), v.get("ess_bulk")) for k, v in diag.items()}
    s = {"netcdf": nc.name, "posterior": diag, "g_upper_by_mass": slices,
         "slice_half_width_decades": SLICE_HALF_WIDTH, "max_abs_g_over_G": float(U.max()),
         "divergences": res.num_divergences, "converged": bool(res.converged),
         "max_r_hat": max(v[0] for v in conv.values() if v[0] is not None) if res.num_draws >= 4 else None,
         "min_ess_bulk": min(v[1] for v in conv.values() if v[1] is not None) if res.num_draws >= 4 else None,
         "mean_steps": float(np.mean(res.groups["sample_stats"]["n_steps"])),
         "sampling_time_s": res.attrs["sampling_time_s"],
         "priors": {**{k: repr(v) for k, v in jm.priors.items() if k not in (g, m)},
                    m: "log-uniform [0.1, 1000] MeV (log10 m ~ Uniform(-1, 3))",
                    g: f"Uniform(-G(m), G(m)), G(m) = {G_SCALE[model_name][0]:g} "
                       f"sqrt(1 + (m / {G_SCALE[model_name][1]:g} MeV)^2)"}}
    if not args.no_plots:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.6, 3.6))
        ax = fig.subplots()
        ax.loglog(M, np.abs(G), ".", ms=2, alpha=0.4)
        mm = np.geomspace(*M_RANGE, 50)
        ax.loglog(mm, np.asarray(g_range(model_name, mm)), "k--", lw=0.8, label="prior edge G(m)")
        ax.set_xlabel(m)
        ax.set_ylabel(f"|{g}|")
        ax.legend(frameon=False, fontsize=7)
        ax.set_title(f"{model_name}, QF {qf}: NUTS draws", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / f"posterior_{model_name}_{qf}.png", dpi=100)
        s["figure"] = f"posterior_{model_name}_{qf}.png"
    return s


def plot_profiles(path, freq, masses):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6))
    axes = fig.subplots(1, 2)
    for ax, w in zip(axes, MODELS):
        for qf, ls in zip(QFS, ("-", "--")):
            f = freq[qf]
            for j, mass in enumerate(masses):
                d = f["models"][w][f"{mass:g}"]["delta_chi2"]
                ax.semilogx(f["grid_g"], d, ls, color=f"C{j}", label=f"m={mass:g} MeV, {qf}")
        ax.axhline(CL90, color="grey", lw=0.5)
        ax.set_ylim(0, 10)
        ax.set_xlabel(MODELS[w][0])
        ax.set_ylabel(r"$\Delta\chi^2$ (profiled)")
        ax.legend(frameon=False, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_limits(path, freq, masses):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6))
    axes = fig.subplots(1, 2)
    for ax, w in zip(axes, MODELS):
        for qf, ls in zip(QFS, ("-o", "--s")):
            up = [freq[qf]["models"][w][f"{m:g}"]["g_upper_90"] for m in masses]
            ax.loglog(masses, [np.nan if u is None else u for u in up], ls, ms=3, label=f"90% CL, QF {qf}")
        ax.set_xlabel(MODELS[w][1])
        ax.set_ylabel(MODELS[w][0] + " upper limit")
        ax.legend(frameon=False, fontsize=7)
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
    masses = [10.0] if args.quick else [float(x) for x in args.masses.split(",")]
    per_decade = 6 if args.quick else args.per_decade
    timings = {}
    with Timer() as total:
        freq = {}
        for qf in QFS:
            with Timer() as t:
                freq[qf] = frequentist(qf, args, masses, per_decade, timings)
            timings[f"profiles_{qf}_s"] = round(t.s, 2)
        runs = [("zprime", "lindhard")] if args.quick else [(w, q) for w in MODELS for q in QFS]
        bayes = {f"{w}_{q}": bayesian(w, q, args, out, timings, freq[q]["sm_fit"], masses) for w, q in runs}
        figures = []
        if not args.no_plots:
            plot_profiles(out / "profiles.png", freq, masses)
            figures.append("profiles.png")
            if len(masses) > 1:
                plot_limits(out / "limits.png", freq, masses)
                figures.append("limits.png")
            figures += [b["figure"] for b in bayes.values() if "figure" in b]
    timings["total_s"] = round(total.s, 2)
    table = {qf: {w: {k: {"g_upper_90": v["g_upper_90"], "g_upper_95": v["g_upper_95"], "g_best": v["g_best"],
                          "delta_chi2_sm_vs_best": v["delta_chi2_sm_vs_best"], "allowed_90": v["allowed_90"]}
                      for k, v in freq[qf]["models"][w].items()} for w in MODELS} for qf in QFS}
    bayes_table = {}
    for key, b in bayes.items():
        w, qf = key.split("_")
        f = freq[qf]
        for k, v in b["g_upper_by_mass"].items():
            # the profile Delta chi^2 at the prior edge g = G(m_s): large means the flat prior's range is irrelevant
            edge = float(np.interp(np.log10(float(g_range(w, v["m_MeV"]))), np.log10(f["grid_g"]),
                                   f["models"][w][k]["delta_chi2"]))
            bayes_table.setdefault(qf, {}).setdefault(w, {})[k] = {**v, "delta_chi2_profile_at_prior_edge": edge}
    summary = {"script": Path(__file__).name,
               "command": " ".join(["python", "models/" + Path(__file__).name] + sys.argv[1:]),
               "settings": vars(args), "masses_MeV": masses, "limits_90cl_profile": table,
               "limits_bayes_flat_g": bayes_table, "profile_scans": freq, "nuts": bayes,
               "nuts_skipped": [] if not args.quick else [f"{w}_{q}" for w in MODELS for q in QFS if (w, q) not in runs],
               "figures": figures, "timings": timings,
               "notes": ("Delta chi2 per mass slice relative to the best coupling at that mass; "
                         "delta_chi2_sm_vs_best > 0 means new physics is preferred over the SM at that mass. "
                         "limits_90cl_profile also holds the 95 % CL (Delta chi2 < 3.84) upper limits; "
                         "limits_bayes_flat_g: NUTS posterior 90 / 95 % quantiles of |g| near each mass slice.")}
    write_json(out / "summary.json", summary)
    fmt = lambda x: "  n/a   " if x is None else f"{x:8.3g}"
    print("upper limits on g: profile 90 % / 95 % CL and NUTS (flat g) 90 % / 95 %")
    for w in MODELS:
        for qf in QFS:
            for k, v in table[qf][w].items():
                bt = bayes_table.get(qf, {}).get(w, {}).get(k, {})
                print(f"[{qf:8s}] {w:6s} m = {k:>6s} MeV: profile {fmt(v['g_upper_90'])} {fmt(v['g_upper_95'])}  "
                      f"NUTS {fmt(bt.get('g_upper_90'))} {fmt(bt.get('g_upper_95'))}  best g {v['g_best']:.3g}  "
                      f"chi2(SM) - chi2(best) = {v['delta_chi2_sm_vs_best']:.2f}")
    for key, b in bayes.items():
        print(f"NUTS {key:16s}: divergences {b['divergences']}, max r_hat {b['max_r_hat'] or float('nan'):.3f}, "
              f"min bulk ESS {b['min_ess_bulk'] or float('nan'):.0f}, {b['mean_steps']:.1f} steps/draw, "
              f"{b['sampling_time_s']:.1f} s")
    print(f"wrote {out / 'summary.json'} in {total.s:.1f} s")
    return summary


if __name__ == "__main__":
    p = make_parser(__doc__, num_samples=2000, num_warmup=500, num_chains=2)
    p.add_argument("--k-prior", choices=sorted(DQ.K_PRIORS), default="conus_plus")
    p.add_argument("--masses", default="0.1,1,3,10,30,100", help="mass slices in MeV (comma-separated)")
    p.add_argument("--per-decade", type=int, default=16, help="coupling grid points per decade (profile scans)")
    p.add_argument("--target-accept", type=float, default=0.95, help="NUTS target acceptance probability (default 0.95)")
    main(p.parse_args())
