"""Global CEvNS fit: Dresden-II + COHERENT CsI 2017 + CsI 2021 + LAr 2020 in one JointModel.

Shared physics (flat priors, common to every data set): ``sin2_theta_w`` U(0.1, 0.4); vector NSI
``eps_u_ee``, ``eps_d_ee`` U(-0.6, 0.6); a light Z' (``g_zprime`` LogU(1e-7, 1e-3), ``m_zprime_MeV``
LogU(1, 1e4)) and scalar (``g_scalar``, ``m_scalar_MeV``, same ranges). The CsI neutron radius
``csi:delta_rn_fm`` U(-3, 4) fm is shared by the two CsI data sets ONLY (the Ge and Ar radii stay at
their form-factor defaults): it is tied to their local ``delta_rn_fm`` sites (:class:`GlobalModel`).
The CsI proton rms radii are the muonic-atom values 4.804 / 4.749 fm (as in models/coherent_csi.py
``rn``), so R_n(CsI) = 4.83 fm (Klein-Nystrand default, mean of Cs and I) + ``csi:delta_rn_fm``.

Every data set keeps its own nuisances, named ``<experiment>:<name>``:

* Dresden-II (models/dresden_ii_quenching.py): modified Lindhard QF with k ~ N(0.162, 0.004) (CONUS+)
  and q ~ U(-5e-4, 3e-4) -- both marginalised (NUTS) / profiled (fits) -- and the 7 background
  parameters (flat, a_M ~ N(1, 0.03)); Gaussian chi^2 on the released daily rates.
* CsI 2017 / 2021 (models/coherent_csi.py ``nuisance_priors(..., "rn")``): flux 10 %, QF or light yield,
  acceptance, BRN/NIN and steady-state normalisations; Poisson on PE x time.
* LAr 2020 (release LArParametersAnlA.yaml): flux_norm N(1, 0.10), prompt BRN N(1, 160/497),
  delayed BRN N(1, 33/33) truncated at 0, steady state N(1, 25/3152) (as docs/make_results.py); Poisson on E_ee x t_trig.

NOTE: the CsI 2021 full data set CONTAINS the 2017 data, so combining both (as the issue asks) counts
those events twice; ``--datasets dresden_ii,coherent_csi_2021,coherent_lar_2020`` avoids it.

    python models/global_fit.py --physics sin2,rn --num-samples 500 --num-warmup 500 --num-chains 2 --out out_global

``--physics`` picks the free shared parameters (comma list of sin2, rn, nsi, zprime, scalar; the others
stay at the SM); ``--quick`` (CI): 5-point profiles, 2-D NSI profile skipped, NUTS 100 + 100 draws, one
chain, max_tree_depth 6. Writes to --out: summary.json (MLE, Hessian errors, profiles, NUTS summary
with r_hat / ESS / ESS per second, divergences, timings) and posterior.nc (ArviZ InferenceData).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cevnsjax.reporting import Timer, posterior_summary, write_json

DATASETS = ("dresden_ii", "coherent_csi_2017", "coherent_csi_2021", "coherent_lar_2020")
CSI = ("coherent_csi_2017", "coherent_csi_2021")
RN_SITE = "csi:delta_rn_fm"
PHYSICS = ("sin2", "rn", "nsi", "zprime", "scalar")
#: 1-sigma sizes for the optimiser's conditioning (defaults: Normal sigma, 1 % of a flat range)
SCALES = {"sin2_theta_w": 0.01, RN_SITE: 0.3, "eps_u_ee": 0.02, "eps_d_ee": 0.02, "dresden_ii:q": 1e-4,
          "dresden_ii:bkg.dresden_ii.A": 0.5, "dresden_ii:bkg.dresden_ii.B": 10.0,
          "dresden_ii:bkg.dresden_ii.C": 0.2, "dresden_ii:bkg.dresden_ii.h_L1": 1.0,
          "dresden_ii:bkg.dresden_ii.c_L1": 1e-3, "dresden_ii:bkg.dresden_ii.w_L1": 1e-3}


def physics_priors(physics) -> dict:
    """Flat priors of the shared physics parameters named by ``physics`` (except the tied radius)."""
    from cevnsjax.stats.infer import LogUniform, Uniform

    table = {"sin2": {"sin2_theta_w": Uniform(0.1, 0.4)},
             "rn": {},
             "nsi": {"eps_u_ee": Uniform(-0.6, 0.6), "eps_d_ee": Uniform(-0.6, 0.6)},
             "zprime": {"g_zprime": LogUniform(1e-7, 1e-3), "m_zprime_MeV": LogUniform(1.0, 1e4)},
             "scalar": {"g_scalar": LogUniform(1e-7, 1e-3), "m_scalar_MeV": LogUniform(1.0, 1e4)}}
    bad = [p for p in physics if p not in table]
    if bad:
        raise ValueError(f"physics {bad}: choose from {', '.join(PHYSICS)}")
    out = {}
    for p in physics:
        out.update(table[p])
    return out


def lar_priors() -> dict:
    from cevnsjax.stats.infer import Normal, TruncatedNormal

    return {"flux_norm": Normal(1.0, 0.10), "bkg.brn_prompt.scale": Normal(1.0, 160.0 / 497.0),
            "bkg.brn_delayed.scale": TruncatedNormal(1.0, 1.0, lo=0.0), "bkg.ss_bkg.scale": Normal(1.0, 25.0 / 3152.0)}


def analysis(name: str, rn: bool):
    """The Analysis of one data set with its nuisance priors (and a local ``delta_rn_fm`` for CsI if ``rn``)."""
    import cevnsjax as cj
    from cevnsjax.stats.infer import Uniform

    if name == "dresden_ii":
        from cevnsjax.analyses import dresden_ii as DQ

        kind, a, b, _ = DQ.K_PRIORS["conus_plus"]
        from cevnsjax.stats.infer import prior_from_spec

        pri = {"k": prior_from_spec((kind, a, b)), "q": Uniform(*DQ.Q_RANGE), **DQ.background_priors()}
        return cj.Analysis(DQ.dresden_experiment(), priors=pri)
    if name in CSI:
        from cevnsjax.analyses import coherent_csi as CC

        e, n_ac = CC.load_experiment(name)
        prep = e.prepare()
        dp = CC.proton_shift(prep)[0]
        d = e.defaults
        e = dataclasses.replace(e, defaults=d.replace(physics=dataclasses.replace(d.physics, delta_rp_fm=dp)))
        pri = CC.nuisance_priors(name, n_ac, "rn")
        if rn:
            pri["delta_rn_fm"] = Uniform(-3.0, 4.0)
        return cj.Analysis(e, priors=pri, prepared=prep)
    if name == "coherent_lar_2020":
        return cj.Analysis(cj.load_preset(name), priors=lar_priors())
    raise ValueError(f"dataset {name!r}: choose from {', '.join(DATASETS)}")


def m2lnL(jm, values, obs):
    """-2 ln L of a JointModel (``minus2lnL`` where the model has it, else 2 nll)."""
    if hasattr(jm, "minus2lnL"):
        return jm.minus2lnL(values, obs)
    return 2.0 * jm.nll(values, obs)


class GlobalModel:
    """A JointModel of several data sets plus ties: one site (``csi:delta_rn_fm``) standing for the local
    ``delta_rn_fm`` of every CsI data set. Same interface as a JointModel where the scripts need it:
    ``priors``, ``bounds()``, ``init_values()``, ``observed()``, ``minus2lnL(values, obs)``, and a NumPyro
    model ``__call__(obs)``."""

    def __init__(self, datasets=DATASETS, physics=("sin2", "rn"), analyses=None):
        import cevnsjax as cj

        self.datasets = tuple(datasets)
        rn = "rn" in physics
        self.analyses = analyses or [analysis(n, rn) for n in self.datasets]
        self.jm = cj.JointModel(self.analyses, shared=physics_priors(physics))
        tied = [self.jm.site(a, "delta_rn_fm") for a in self.analyses
                if a.experiment.name in CSI and "delta_rn_fm" in a.priors] if rn else []
        self.ties = {RN_SITE: tied} if tied else {}

    @property
    def priors(self) -> dict:
        gone = {s for v in self.ties.values() for s in v}
        out = {k: p for k, p in self.jm.priors.items() if k not in gone}
        out.update({k: self.jm.priors[v[0]] for k, v in self.ties.items()})
        return out

    @property
    def names(self) -> list:
        return list(self.priors)

    def bounds(self) -> dict:
        b = self.jm.bounds()
        return {k: b[self.ties[k][0]] if k in self.ties else b[k] for k in self.names}

    def expand(self, values) -> dict:
        """Site values of the underlying JointModel (each tie copied to its sites)."""
        v = dict(values)
        for k, sites in self.ties.items():
            if k in v:
                x = v.pop(k)
                v.update({s: x for s in sites})
        return v

    def init_values(self) -> dict:
        iv = self.jm.init_values()
        out = {k: iv[k] for k in self.names if k in iv}
        out.update({k: iv[v[0]] for k, v in self.ties.items()})
        return out

    def observed(self) -> dict:
        return self.jm.observed()

    def minus2lnL(self, values, obs=None):
        """-2 ln L of all data sets (Poisson deviance / Gaussian chi^2) + constraint terms."""
        return m2lnL(self.jm, self.expand(values), self.observed() if obs is None else obs)

    def __call__(self, obs=None):
        """NumPyro model: the JointModel's with the tied sites sampled once."""
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        from cevnsjax.experiment import predict
        from cevnsjax.stats.model import ContinuousPoisson

        values = {k: p.sample(k) for k, p in self.priors.items()}
        values = self.expand(values)
        for a in self.analyses:
            mu = predict(self.jm.theta(a, values), a.prepared).total
            name = a.experiment.name
            y = None if obs is None else obs[name]
            o = a.experiment.observed
            if o is not None and o.likelihood != "poisson":
                numpyro.sample(f"obs_{name}", dist.Normal(mu, jnp.asarray(o.errors)).to_event(mu.ndim), obs=y)
            else:
                numpyro.sample(f"obs_{name}", ContinuousPoisson(jnp.maximum(mu, 1e-30)).to_event(mu.ndim), obs=y)


# --------------------------------------------------------------------------------------------- fits
class Fitter:
    """scipy L-BFGS-B on one jitted value_and_grad of ``model.minus2lnL`` over the full parameter vector
    (held parameters are masked, so any fixed set reuses the one compilation); scaled coordinates."""

    def __init__(self, model, obs=None):
        import jax
        import jax.numpy as jnp

        from cevnsjax.stats.infer import Normal, TruncatedNormal

        self.model = model
        self.obs = model.observed() if obs is None else obs
        self.names = model.names
        pri, bnd = model.priors, model.bounds()
        self.lo = np.array([-np.inf if bnd[n][0] is None else bnd[n][0] for n in self.names])
        self.hi = np.array([np.inf if bnd[n][1] is None else bnd[n][1] for n in self.names])

        def scale(n):
            if n in SCALES:
                return SCALES[n]
            p = pri[n]
            if isinstance(p, (Normal, TruncatedNormal)):
                return float(p.sigma)
            return 0.01 * (self.hi[self.names.index(n)] - self.lo[self.names.index(n)])

        self.scale = np.array([scale(n) for n in self.names])
        names = tuple(self.names)
        f = lambda x, obs: model.minus2lnL(dict(zip(names, x)), obs)  # noqa: E731
        self._vg = jax.jit(jax.value_and_grad(f))
        self._jnp = jnp

    def fit(self, init=None, fixed=None, hessian=True, maxiter=2000):
        """Best fit with ``fixed`` held: dict(params, minus2lnL, errors, converged)."""
        from scipy.optimize import minimize

        fixed = dict(fixed or {})
        x = np.array([float(v) for v in self.vector({**self.model.init_values(), **dict(init or {}), **fixed})])
        free = np.array([n not in fixed for n in self.names])
        x0, s = x.copy(), self.scale

        def fg(z):
            xx = x0.copy()
            xx[free] = x0[free] + z * s[free]
            v, g = self._vg(self._jnp.asarray(xx), self.obs)
            return float(v), np.asarray(g)[free] * s[free]

        lo = (self.lo[free] - x0[free]) / s[free]
        hi = (self.hi[free] - x0[free]) / s[free]
        r = minimize(fg, np.zeros(free.sum()), jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)),
                     options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-7})
        xb = x0.copy()
        xb[free] = x0[free] + r.x * s[free]
        out = {"params": dict(zip(self.names, map(float, xb))), "minus2lnL": float(r.fun), "converged": bool(r.success),
               "message": str(r.message), "errors": {}}
        if hessian:
            H = self.hessian(xb)[np.ix_(free, free)]
            try:
                cov = np.linalg.inv(0.5 * H)  # -2 ln L: covariance = (H/2)^-1
                err = np.sqrt(np.clip(np.diag(cov), 0, None))
                out["errors"] = dict(zip([n for n, f in zip(self.names, free) if f], map(float, err)))
            except np.linalg.LinAlgError:
                pass
        return out

    def hessian(self, x):
        """Hessian of -2 ln L: central differences of the jitted gradient (steps 1e-3 x scale), symmetrised.
        (jax.hessian is not used: forward-over-reverse through the Dresden-II smearing table gives NaN.)"""
        n = x.size
        H = np.empty((n, n))
        for i in range(n):
            h = 1e-3 * self.scale[i]
            xp, xm = x.copy(), x.copy()
            xp[i] += h
            xm[i] -= h
            H[i] = (np.asarray(self._vg(self._jnp.asarray(xp), self.obs)[1])
                    - np.asarray(self._vg(self._jnp.asarray(xm), self.obs)[1])) / (2 * h)
        return 0.5 * (H + H.T)

    def vector(self, values):
        return [values[n] for n in self.names]

    def profile(self, name, grid, best):
        """Profile Delta(-2 ln L) of ``name`` over ``grid`` (warm-started outwards from the best fit)."""
        grid = np.asarray(grid, float)
        m2 = np.empty(grid.size)
        order = np.argsort(np.abs(grid - best["params"][name]))
        start = dict(best["params"])
        for i in order:
            r = self.fit(init=start, fixed={name: grid[i]}, hessian=False)
            m2[i] = r["minus2lnL"]
            start = r["params"]
        return m2 - min(best["minus2lnL"], m2.min())

    def profile2(self, names, gx, gy, best):
        out = np.empty((len(gx), len(gy)))
        start = dict(best["params"])
        for i, x in enumerate(gx):
            for j, y in enumerate(gy):
                r = self.fit(init=start, fixed={names[0]: x, names[1]: y}, hessian=False)
                out[i, j] = r["minus2lnL"]
        return out - min(best["minus2lnL"], out.min())


def interval(grid, d, level=1.0):
    """[lo, hi] where the profile Delta chi^2 crosses ``level`` (linear interpolation; None: not crossed)."""
    grid, d = np.asarray(grid), np.asarray(d)
    i = int(np.argmin(d))
    lo = hi = None
    for j in range(i, 0, -1):
        if d[j - 1] >= level > d[j] or d[j - 1] > level >= d[j]:
            lo = float(np.interp(level, [d[j], d[j - 1]], [grid[j], grid[j - 1]]))
            break
    for j in range(i, len(d) - 1):
        if d[j + 1] >= level > d[j] or d[j + 1] > level >= d[j]:
            hi = float(np.interp(level, [d[j], d[j + 1]], [grid[j], grid[j + 1]]))
            break
    return [lo, hi]


# --------------------------------------------------------------------------------------------- NUTS
def sampling(model, init):
    """NumPyro model and start values for NUTS: Dresden-II's q through the complementary log-log link of
    models/dresden_ii_quenching.py (same posterior, better-behaved coordinate)."""
    import numpyro

    site = "dresden_ii:q" if len(model.analyses) > 1 else "q"
    init = {k: v for k, v in init.items()}
    if site not in model.priors:
        return model, init
    from numpyro.distributions import TransformedDistribution
    from numpyro.infer.reparam import Reparam

    from cevnsjax.analyses import dresden_ii as DQ

    lo, hi = model.bounds()[site]
    link = DQ.q_link(lo, hi)

    class LinkReparam(Reparam):
        """Sample ``<site>_z`` with the prior pushed through ``link.inv`` (exact Jacobian); ``<site>`` deterministic."""

        def __call__(self, name, fn, obs):
            z = numpyro.sample(f"{name}_z", TransformedDistribution(fn, link.inv))
            return None, link(z)

    init[site + "_z"] = float(link.inv(min(max(init.pop(site), lo + 1e-3 * (hi - lo)), hi - 1e-3 * (hi - lo))))
    return numpyro.handlers.reparam(model, config={site: LinkReparam()}), init


def interior(values, model):
    out = {}
    for k, v in values.items():
        lo, hi = model.bounds()[k]
        span = (hi - lo) if lo is not None and hi is not None else 1.0
        if lo is not None:
            v = max(v, lo + 1e-4 * span)
        if hi is not None:
            v = min(v, hi - 1e-4 * span)
        out[k] = float(v)
    return out


def run_nuts(model, init, num_samples, num_warmup, num_chains, seed, max_tree_depth=10):
    from cevnsjax.stats.infer import run_nuts as _run

    fn, init = sampling(model, interior(init, model))
    return _run(fn, obs=model.observed(), num_samples=num_samples, num_warmup=num_warmup, num_chains=num_chains,
                seed=seed, progress_bar=False, init_values=init, dense_mass=True, max_tree_depth=max_tree_depth,
                chain_method="sequential" if num_chains > 1 else "vectorized", num_prior_samples=0,
                posterior_predictive=False)


# --------------------------------------------------------------------------------------------- main
def main(args):
    import matplotlib

    import cevnsjax

    matplotlib.use("Agg")
    cevnsjax.enable_x64()
    out = Path(args.out or "out_global_fit")
    out.mkdir(parents=True, exist_ok=True)
    datasets = tuple(s for s in args.datasets.split(",") if s)
    physics = tuple(s for s in args.physics.split(",") if s)
    summary = {"script": "global_fit", "datasets": datasets, "physics": physics, "settings": {
        k: getattr(args, k) for k in ("num_samples", "num_warmup", "num_chains", "seed", "quick")}, "timing_s": {}}
    with Timer() as t:
        gm = GlobalModel(datasets, physics)
    summary["timing_s"]["build"] = t.s
    summary["n_parameters"] = len(gm.names)
    summary["parameters"] = gm.names
    with Timer() as t:
        f = Fitter(gm)
        best = f.fit(init=gm.init_values())
        best = f.fit(init=best["params"])  # restart from the optimum (L-BFGS-B stops early on flat nuisances)
    summary["timing_s"]["mle"] = t.s
    summary["mle"] = best
    n = 5 if args.quick else 21
    prof = {}
    with Timer() as t:
        for p in [p for p in ("sin2_theta_w", RN_SITE) if p in gm.names]:
            lo, hi = gm.bounds()[p]
            v, e = best["params"][p], best["errors"].get(p, np.nan)
            w = 3.0 * e if np.isfinite(e) and e > 0 else 0.2 * (hi - lo)
            g = np.linspace(max(lo, v - w), min(hi, v + w), n)
            d = f.profile(p, g, best)
            prof[p] = {"grid": g, "delta_chi2": d, "interval68": interval(g, d, 1.0), "interval90": interval(g, d, 2.706)}
        if "eps_u_ee" in gm.names and not args.quick:
            g = np.linspace(-0.5, 0.5, 11)
            d = f.profile2(("eps_u_ee", "eps_d_ee"), g, g, best)
            prof["nsi"] = {"grid": g, "delta_chi2": d, "allowed_fraction_90cl": float(np.mean(d < 4.605))}
    summary["timing_s"]["profiles"] = t.s
    summary["profiles"] = prof
    if RN_SITE in gm.names:
        from cevnsjax.analyses import coherent_csi as CC

        a = [a for a in gm.analyses if a.experiment.name in CSI][0]
        rn0 = CC.proton_shift(a.prepared)[2]
        summary["R_n_csi_default_fm"] = rn0
        if RN_SITE in prof:
            iv = prof[RN_SITE]["interval68"]
            summary["R_n_csi_fm"] = {"best": rn0 + best["params"][RN_SITE],
                                     "interval68": [None if x is None else rn0 + x for x in iv]}
    if args.num_samples > 0:
        depth = 6 if args.quick else 10
        ns, nw = (min(args.num_samples, 100), min(args.num_warmup, 100)) if args.quick else (args.num_samples, args.num_warmup)
        r = run_nuts(gm, best["params"], ns, nw, 1 if args.quick else args.num_chains, args.seed, depth)
        post = posterior_summary(r, gm.names)
        ts = r.attrs.get("sampling_time_s")
        ess_min = min(v.get("ess_bulk", np.nan) for v in post.values())
        rhat_max = max(v.get("r_hat", np.nan) for v in post.values())
        summary["nuts"] = {"summary": post, "divergences": int(r.num_divergences), "sampling_time_s": ts,
                           "r_hat_max": rhat_max, "ess_bulk_min": ess_min,
                           "ess_bulk_min_per_s": ess_min / ts if ts else None,
                           "converged": bool(rhat_max < 1.01 and r.num_divergences == 0)}
        r.save(out / "posterior.nc")
    write_json(out / "summary.json", summary)
    _print(summary)
    return summary


def _print(s):
    b = s["mle"]
    print(f"global fit of {', '.join(s['datasets'])}: {s['n_parameters']} parameters, -2lnL = {b['minus2lnL']:.2f}")
    for p in ("sin2_theta_w", RN_SITE, "eps_u_ee", "eps_d_ee"):
        if p in b["params"]:
            print(f"  {p} = {b['params'][p]:.4f} +- {b['errors'].get(p, float('nan')):.4f}")
    if "nuts" in s:
        n = s["nuts"]
        print(f"  NUTS: r_hat max {n['r_hat_max']:.4f}, divergences {n['divergences']}, ESS min {n['ess_bulk_min']:.0f}"
              f" ({n['ess_bulk_min_per_s']:.2f}/s), {n['sampling_time_s']:.0f} s")


def make_parser():
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=500, help="NUTS draws per chain (0: no NUTS)")
    p.add_argument("--num-warmup", type=int, default=500, help="NUTS warmup steps per chain")
    p.add_argument("--num-chains", type=int, default=2, help="NUTS chains (run one after the other)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default out_global_fit)")
    p.add_argument("--quick", action="store_true", help="CI settings (see the module docstring)")
    p.add_argument("--no-plots", action="store_true", help="accepted for symmetry with the other scripts (no plots)")
    return p


if __name__ == "__main__":
    p = make_parser()
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma list of data sets")
    p.add_argument("--physics", default="sin2,rn", help="free shared physics: comma list of " + ", ".join(PHYSICS))
    main(p.parse_args())
