"""NUTS versus random-walk Metropolis on the Dresden-II quenching model (k fixed at 0.157; q + 7 backgrounds).

All three samplers run on the SAME target: numpyro's ``potential_fn`` (``initialize_model``) of
``dresden_ii_quenching.sampling_model``, i.e. the Dresden-II likelihood and priors in the unconstrained
space, with q sampled through the complementary log-log link of ``dresden_ii_quenching.q_link``
(``--q-link logit`` gives numpyro's default coordinate instead, for comparison).

* NUTS: numpyro's NUTS kernel, dense mass matrix, one chain started at the best fit, ``--num-warmup``
  adaptation steps with ``--target-accept``, stepped by a jitted ``lax.scan`` over ``kernel.sample``
  (numpyro's ``MCMC.run`` recompiles its sampling loop on every call, ~2.5 s here, so timing a second
  ``run`` does not remove compilation). Each loop (warmup, draws) is called twice and the second, cached
  call is timed; compile = first - second call.
* RW-MH "oracle": a jitted random-walk Metropolis (``lax.scan``) with a multivariate-normal proposal of
  covariance 2.38^2/d x the posterior covariance from the NUTS draws (the asymptotically optimal RW
  scaling for a Gaussian target). A strong baseline whose tuning needs the answer; that cost is not
  charged to it. Started at the last NUTS draw, no burn-in.
* RW-MH "adaptive": what one would run without NUTS: a diagonal Gaussian proposal whose per-parameter
  widths are the fit's parabolic (Hessian) errors mapped into the unconstrained space, times one global
  factor adapted during ``--rw-burn`` burn-in steps (Robbins-Monro on log scale, target acceptance
  0.234), then frozen. Started at the best fit; the burn-in is reported and charged separately.

ESS is the rank-normalised bulk ESS (cevnsjax.results.rank_diagnostics) of each physical parameter. Rates:
ESS/s of the sampling phase (compile, warmup and burn-in excluded) and, load-independent, ESS per 1000
likelihood evaluations (NUTS: gradient evaluations = leapfrog steps; RW: potential evaluations). The
machine is shared, so the seconds move with its load; the per-evaluation figures and the measured
time per evaluation do not (apart from the latter's own noise).

Targets (issue 4): NUTS >= 100 ESS/s for the worst parameter, and >= 10x the RW-MH worst-parameter ESS/s;
the ratio is reported against both baselines.

    python benchmarks/bench_inference.py [--num-samples 4000 --num-warmup 1000 --rw-steps 200000 --json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-samples", type=int, default=4000)
    ap.add_argument("--num-warmup", type=int, default=1000)
    ap.add_argument("--target-accept", type=float, default=0.7)
    ap.add_argument("--max-tree-depth", type=int, default=10)
    ap.add_argument("--q-link", choices=("cloglog", "logit"), default="cloglog",
                    help="sampling coordinate of q for all samplers (default cloglog: dresden_ii_quenching.q_link)")
    ap.add_argument("--rw-steps", type=int, default=200_000, help="RW-MH steps after burn-in (each sampler)")
    ap.add_argument("--rw-burn", type=int, default=20_000, help="adaptive RW-MH burn-in (tuning) steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import jax
    import jax.flatten_util
    import jax.numpy as jnp
    import numpy as np
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer import NUTS, init_to_value
    from numpyro.infer.util import initialize_model

    import cevnsjax as cj
    from cevnsjax.analyses import dresden_ii as DQ
    from cevnsjax.results import rank_diagnostics

    cj.enable_x64()
    model = DQ.build_model(None)
    obs = model.observed()
    names = list(model.priors)
    t = time.perf_counter()
    best = model.fit()  # with the Hessian: the adaptive RW's proposal widths
    t_fit = time.perf_counter() - t
    if a.q_link == "cloglog":
        smodel, init = DQ.sampling_model(model), DQ.sampling_init(model, best.best_fit)
    else:
        smodel, init = model, dict(best.best_fit)

    # ---- NUTS: numpyro's kernel stepped by our own jitted lax.scan (warmup = the first num_warmup steps of the
    # kernel, as in numpyro's MCMC). MCMC.run recompiles its sampling loop on every call (~2.5 s here), so it
    # cannot time draws alone; this loop compiles once per length and the second call of each is timed.
    kern = NUTS(smodel, dense_mass=True, target_accept_prob=a.target_accept, max_tree_depth=a.max_tree_depth,
                init_strategy=init_to_value(values=init))
    kw = {"obs": obs}
    state0 = kern.init(jax.random.PRNGKey(a.seed), a.num_warmup, model_args=(), model_kwargs=kw)

    def nuts_chain(state, n):
        def step(st, _):
            st = kern.sample(st, (), kw)
            return st, (st.z, st.num_steps, st.diverging)

        return jax.lax.scan(step, state, None, length=n)

    nuts_jit = jax.jit(nuts_chain, static_argnums=1)

    def timed(f, *args):
        t = time.perf_counter()
        r = jax.block_until_ready(f(*args))
        return r, time.perf_counter() - t

    (wstate, (_, wsteps, _)), t_warm_first = timed(nuts_jit, state0, a.num_warmup)  # compile + adaptation
    _, t_warmup = timed(nuts_jit, state0, a.num_warmup)  # cached: adaptation only (same result)
    grads_warmup = int(np.sum(np.asarray(wsteps)))
    (state1, _), t_run_first = timed(nuts_jit, wstate, a.num_samples)  # compile + draws
    (_, (zs, n_steps, divs)), t_nuts = timed(nuts_jit, state1, a.num_samples)  # cached: draws only
    n_steps = np.asarray(n_steps)
    grads = int(n_steps.sum())
    divergences = int(np.sum(np.asarray(divs)))
    t_per_grad = t_nuts / grads
    t_compile_warm = max(t_warm_first - t_warmup, 0.0)
    t_compile_run = max(t_run_first - t_nuts, 0.0)

    # ---- the shared unconstrained potential
    info = initialize_model(jax.random.PRNGKey(0), smodel, model_kwargs={"obs": obs},
                            init_strategy=init_to_value(values=init))
    z0 = info.param_info.z
    flat0, unravel = jax.flatten_util.ravel_pytree(z0)
    d = flat0.size
    tr = info.model_trace
    bij = {s: biject_to(tr[s]["fn"].support) for s in z0}

    def u(x):
        return info.potential_fn(unravel(x))

    def to_flat_unconstrained(latent):  # constrained latent sites -> flat unconstrained vector
        return jax.flatten_util.ravel_pytree({s: bij[s].inv(latent[s]) for s in z0})[0]

    U = np.asarray(jax.vmap(lambda z: jax.flatten_util.ravel_pytree({s: z[s] for s in z0})[0])(zs))
    cov_post = np.cov(U.T)
    L_oracle = jnp.asarray(np.linalg.cholesky(cov_post * 2.38 ** 2 / d + 1e-12 * np.eye(d) * np.trace(cov_post) / d))

    # adaptive RW: parabolic errors of the physical parameters -> unconstrained widths via the (diagonal)
    # Jacobian of physical -> unconstrained at the best fit; start width 2.38/sqrt(d) x that
    def phys_to_flat(xv):
        p = dict(zip(names, xv))
        lat = {}
        for s in z0:
            if s == "q_z":
                lat[s] = DQ.q_link(*model.bounds()["q"]).inv(p["q"])
            else:
                lat[s] = p[s]
        return to_flat_unconstrained(lat)

    xb = jnp.asarray([best.best_fit[n] for n in names])
    J = np.asarray(jax.jacfwd(phys_to_flat)(xb))  # (d, len(names))
    err = np.array([best.errors[n] for n in names])
    sig_u = np.sqrt((J ** 2) @ (err ** 2))
    x_best = jnp.asarray(phys_to_flat(xb))

    def rw_chain(key, x0, L, n):
        """n RW-MH steps with proposal x + L N(0, 1); returns the chain and the number accepted."""

        def step(carry, k):
            x, ux, acc = carry
            k1, k2 = jax.random.split(k)
            y = x + L @ jax.random.normal(k1, (d,))
            uy = u(y)
            ok = jnp.log(jax.random.uniform(k2)) < ux - uy
            return (jnp.where(ok, y, x), jnp.where(ok, uy, ux), acc + ok), jnp.where(ok, y, x)

        (_, _, acc), xs = jax.lax.scan(step, (x0, u(x0), 0), jax.random.split(key, n))
        return xs, acc

    def rw_burn(key, x0, sig, n, target=0.234):
        """Burn-in with a diagonal proposal sig * s; log s follows Robbins-Monro towards ``target`` acceptance
        (gain (t + 10)^-0.6). Returns (last state, final s, acceptance over the burn-in)."""

        def step(carry, kt):
            x, ux, ls, acc = carry
            k, t = kt
            k1, k2 = jax.random.split(k)
            y = x + jnp.exp(ls) * sig * jax.random.normal(k1, (d,))
            uy = u(y)
            logr = jnp.minimum(ux - uy, 0.0)
            ok = jnp.log(jax.random.uniform(k2)) < logr
            ls = ls + (t + 10.0) ** -0.6 * (jnp.exp(logr) - target)
            return (jnp.where(ok, y, x), jnp.where(ok, uy, ux), ls, acc + ok), None

        ts = jnp.arange(n, dtype=float)
        (x, _, ls, acc), _ = jax.lax.scan(step, (x0, u(x0), jnp.log(2.38 / np.sqrt(d)), 0),
                                          (jax.random.split(key, n), ts))
        return x, jnp.exp(ls), acc / n

    rw_jit = jax.jit(rw_chain, static_argnums=3)
    burn_jit = jax.jit(rw_burn, static_argnums=3)

    def to_physical(x):  # flat unconstrained vector -> physical parameters (no model replay)
        z = unravel(x)
        p = {s: bij[s](z[s]) for s in z}
        if "q_z" in p:
            p["q"] = DQ.q_link(*model.bounds()["q"])(p.pop("q_z"))
        return p

    def ess_of(xs):  # flat unconstrained chain -> ESS of each physical parameter
        cons = jax.jit(jax.vmap(to_physical))(xs)
        return {n: float(np.ravel(rank_diagnostics(np.asarray(cons[n])[None, :])[1])[0]) for n in names}

    # oracle RW: compile + run, then cached run (timed)
    _, t_or_first = timed(rw_jit, jax.random.PRNGKey(a.seed + 3), jnp.asarray(U[-1]), L_oracle, a.rw_steps)
    (xs_or, acc_or), t_or = timed(rw_jit, jax.random.PRNGKey(a.seed + 4), jnp.asarray(U[-1]), L_oracle, a.rw_steps)
    ess_or = ess_of(xs_or)
    ess_nuts = ess_of(jnp.asarray(U))
    # adaptive RW: burn-in (compile, then cached, timed), frozen diagonal proposal, sampling (cached compile)
    _, t_burn_first = timed(burn_jit, jax.random.PRNGKey(a.seed + 5), x_best, jnp.asarray(sig_u), a.rw_burn)
    (x_ad, s_ad, acc_burn), t_burn = timed(burn_jit, jax.random.PRNGKey(a.seed + 6), x_best, jnp.asarray(sig_u), a.rw_burn)
    L_ad = jnp.diag(float(s_ad) * jnp.asarray(sig_u))
    (xs_ad, acc_ad), t_ad = timed(rw_jit, jax.random.PRNGKey(a.seed + 7), x_ad, L_ad, a.rw_steps)
    ess_ad = ess_of(xs_ad)
    t_eval_rw = (t_or + t_ad) / (2 * a.rw_steps)

    def block(ess, seconds, evals, extra_evals=0, extra_s=0.0):
        rate = {n: ess[n] / seconds for n in names}
        w = min(ess, key=ess.get)
        return {"ess_bulk": ess, "ess_per_s": rate, "ess_per_1000_evals": {n: 1000 * ess[n] / evals for n in names},
                "worst": w, "worst_ess": ess[w], "worst_ess_per_s": rate[w],
                "worst_ess_per_1000_evals": 1000 * ess[w] / evals,
                "worst_ess_per_s_tuning_charged": ess[w] / (seconds + extra_s),
                "worst_ess_per_1000_evals_tuning_charged": 1000 * ess[w] / (evals + extra_evals)}

    nuts = {"num_warmup": a.num_warmup, "num_samples": a.num_samples, "num_chains": 1, "dense_mass": True,
            "target_accept_prob": a.target_accept, "max_tree_depth": a.max_tree_depth, "q_link": a.q_link,
            "compile_s (warmup loop + sampling loop: first call - cached call)": round(t_compile_warm + t_compile_run, 3),
            "warmup_s (cached call, adaptation only)": round(t_warmup, 3),
            "sampling_s (cached run, draws only)": round(t_nuts, 3), "divergences": divergences,
            "gradient_evals": grads, "gradient_evals_warmup": grads_warmup,
            "mean_leapfrog_steps_per_draw": float(n_steps.mean()), "ms_per_gradient_eval": 1e3 * t_per_grad,
            "ess_per_draw": {n: ess_nuts[n] / a.num_samples for n in names},
            **block(ess_nuts, t_nuts, grads, grads_warmup, t_warmup)}
    oracle = {"kind": "RW-MH, MVN proposal 2.38^2/d x NUTS posterior covariance (tuning not charged)",
              "steps": a.rw_steps, "acceptance": float(acc_or) / a.rw_steps, "compile_s": round(max(t_or_first - t_or, 0), 3),
              "sampling_s": round(t_or, 3), "ms_per_eval": 1e3 * t_or / a.rw_steps, **block(ess_or, t_or, a.rw_steps)}
    adapt = {"kind": "RW-MH, diagonal proposal = parabolic fit errors x one factor tuned in burn-in to 0.234 acceptance",
             "burn_in_steps": a.rw_burn, "burn_in_s": round(t_burn, 3), "burn_in_acceptance": float(acc_burn),
             "tuned_factor_x_sqrt(d)": float(s_ad) * np.sqrt(d), "steps": a.rw_steps,
             "acceptance": float(acc_ad) / a.rw_steps, "compile_s": round(max(t_burn_first - t_burn, 0), 3),
             "sampling_s": round(t_ad, 3), "ms_per_eval": 1e3 * t_ad / a.rw_steps,
             **block(ess_ad, t_ad, a.rw_steps, a.rw_burn, t_burn)}
    r_or = nuts["worst_ess_per_s"] / oracle["worst_ess_per_s"]
    r_ad = nuts["worst_ess_per_s"] / adapt["worst_ess_per_s"]
    r_ad_charged = nuts["worst_ess_per_s_tuning_charged"] / adapt["worst_ess_per_s_tuning_charged"]
    out = {
        "machine": {"devices": str(jax.devices()), "cpu_count": os.cpu_count(),
                    "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "model": "Dresden-II, modified Lindhard k = 0.157 fixed, q + 7 background parameters (8 latent)",
        "best_fit_s": round(t_fit, 3), "nuts": nuts, "rw_oracle": oracle, "rw_adaptive": adapt,
        "ratio_worst_ess_per_s": {"nuts_over_rw_oracle": r_or, "nuts_over_rw_adaptive": r_ad,
                                  "nuts_over_rw_adaptive_tuning_charged_both": r_ad_charged},
        "ratio_worst_ess_per_1000_evals": {
            "nuts_over_rw_oracle": nuts["worst_ess_per_1000_evals"] / oracle["worst_ess_per_1000_evals"],
            "nuts_over_rw_adaptive": nuts["worst_ess_per_1000_evals"] / adapt["worst_ess_per_1000_evals"]},
        "targets": {"nuts_worst_ge_100_ess_per_s": nuts["worst_ess_per_s"] >= 100,
                    "ratio_ge_10_vs_rw_oracle": r_or >= 10, "ratio_ge_10_vs_rw_adaptive": r_ad >= 10,
                    "ratio_ge_10_vs_rw_adaptive_tuning_charged": r_ad_charged >= 10},
    }

    print(f"best fit {t_fit:.2f} s; load average {out['machine']['load_average_1_5_15']}")
    print(f"NUTS (q link {a.q_link}, target_accept {a.target_accept}, {a.num_warmup} warmup): compile ~"
          f"{t_compile_warm + t_compile_run:.2f} s, warmup ~{t_warmup:.2f} s, {a.num_samples} draws in {t_nuts:.2f} s; "
          f"{n_steps.mean():.2f} steps/draw, {1e3 * t_per_grad:.3f} ms/gradient, {divergences} divergences")
    print(f"RW oracle: acceptance {oracle['acceptance']:.3f}, {a.rw_steps} steps in {t_or:.2f} s; RW adaptive: burn-in "
          f"{a.rw_burn} steps in {t_burn:.2f} s (acceptance {float(acc_burn):.3f}), factor x sqrt(d) = "
          f"{float(s_ad) * np.sqrt(d):.2f}, acceptance {adapt['acceptance']:.3f}, {a.rw_steps} steps in {t_ad:.2f} s; "
          f"{1e3 * t_eval_rw:.3f} ms/potential eval")
    hdr = f"{'parameter':22s} | {'NUTS ESS':>8s} {'/draw':>6s} {'/s':>7s} {'/1k grad':>8s} | " \
          f"{'oracle ESS':>10s} {'/s':>7s} {'/1k ev':>7s} | {'adapt ESS':>9s} {'/s':>7s} {'/1k ev':>7s}"
    print(hdr)
    print("-" * len(hdr))
    for n in names:
        print(f"{n.replace('bkg.dresden_ii.', 'bkg.'):22s} | {ess_nuts[n]:8.0f} {nuts['ess_per_draw'][n]:6.2f} "
              f"{nuts['ess_per_s'][n]:7.1f} {nuts['ess_per_1000_evals'][n]:8.1f} | {ess_or[n]:10.0f} "
              f"{oracle['ess_per_s'][n]:7.1f} {oracle['ess_per_1000_evals'][n]:7.2f} | {ess_ad[n]:9.0f} "
              f"{adapt['ess_per_s'][n]:7.1f} {adapt['ess_per_1000_evals'][n]:7.2f}")
    for lab, b in (("NUTS", nuts), ("RW oracle", oracle), ("RW adaptive", adapt)):
        print(f"worst {lab:12s}: {b['worst']:22s} {b['worst_ess_per_s']:8.1f} ESS/s, "
              f"{b['worst_ess_per_1000_evals']:7.2f} ESS/1000 evals; tuning charged: "
              f"{b['worst_ess_per_s_tuning_charged']:8.1f} ESS/s, "
              f"{b['worst_ess_per_1000_evals_tuning_charged']:7.2f} ESS/1000 evals")
    tick = {True: "MET", False: "NOT met"}
    print(f"target NUTS worst >= 100 ESS/s: {tick[out['targets']['nuts_worst_ge_100_ess_per_s']]} "
          f"({nuts['worst_ess_per_s']:.1f})")
    print(f"target >= 10x RW, worst-parameter ESS/s: vs oracle RW {r_or:.1f}x {tick[r_or >= 10]}; "
          f"vs adaptive RW {r_ad:.1f}x {tick[r_ad >= 10]}; vs adaptive RW with warmup/burn-in charged to both "
          f"{r_ad_charged:.1f}x {tick[r_ad_charged >= 10]}")
    print(f"per evaluation (load-independent): NUTS/oracle {out['ratio_worst_ess_per_1000_evals']['nuts_over_rw_oracle']:.2f}x, "
          f"NUTS/adaptive {out['ratio_worst_ess_per_1000_evals']['nuts_over_rw_adaptive']:.1f}x "
          f"(a gradient costs {t_per_grad / t_eval_rw:.2f} potential evals here, NUTS tree overhead included)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
