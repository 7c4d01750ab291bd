"""NUTS versus random-walk Metropolis on the Dresden-II quenching model (k fixed at 0.157; q + 7 backgrounds).

NUTS: numpyro NUTS with a dense mass matrix, started at the best fit (as models/dresden_ii_quenching.py).
The first run (compile + warmup + draws) is timed; then the same MCMC object continues from its adapted
state (``post_warmup_state``, compiled chain cached) for ``--num-samples`` more draws, whose wall time and
ESS give ESS/s (warmup and compile excluded; compile is estimated from the two timings).

Baseline: a hand-written, jitted random-walk Metropolis (``lax.scan``) on the SAME potential
(numpyro's ``initialize_model`` potential_fn in the unconstrained space), with a multivariate-normal
proposal whose covariance is 2.38^2/d times the posterior covariance estimated from the NUTS draws
(the asymptotically optimal RW-MH scaling for a Gaussian target: a strong, pre-tuned baseline; its tuning
cost is not charged to it). No thinning, no warmup (started inside the posterior); ESS is the
rank-normalised bulk ESS (cevnsjax.results.rank_diagnostics, as for NUTS).

Reported: per-parameter bulk ESS, ESS/s (sampling phase only, compile excluded), the worst parameter,
and the NUTS/RW ratio of worst-parameter ESS/s. Targets: >= 100 ESS/s worst parameter, >= 10x RW.

    python benchmarks/bench_inference.py [--num-samples 2000 --num-warmup 500 --rw-steps 200000 --json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-samples", type=int, default=2000)
    ap.add_argument("--num-warmup", type=int, default=500)
    ap.add_argument("--num-chains", type=int, default=1)
    ap.add_argument("--rw-steps", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import jax
    import jax.flatten_util
    import jax.numpy as jnp
    import numpy as np
    from numpyro.infer import MCMC, NUTS, init_to_value
    from numpyro.infer.util import initialize_model

    import cevnsjax as cj
    from cevnsjax.results import rank_diagnostics
    from _common import Fitter
    import dresden_ii_quenching as DQ

    cj.enable_x64()
    model = DQ.build_model(None)
    obs = model.observed()
    best = Fitter(model, scales=DQ.SCALES).fit()
    names = list(model.priors)

    k = NUTS(model, dense_mass=True, init_strategy=init_to_value(values=best.best_fit))
    mc = MCMC(k, num_warmup=a.num_warmup, num_samples=a.num_samples, num_chains=a.num_chains, progress_bar=False,
              chain_method="vectorized")
    t = time.perf_counter()
    mc.run(jax.random.PRNGKey(a.seed), obs=obs, extra_fields=("num_steps",))  # compile + warmup + draws
    jax.block_until_ready(mc.get_samples())
    t_first = time.perf_counter() - t
    mc.post_warmup_state = mc.last_state  # second run: adapted kernel, cached compiled chain, draws only
    t = time.perf_counter()
    mc.run(jax.random.PRNGKey(a.seed + 1), obs=obs, extra_fields=("num_steps",))
    jax.block_until_ready(mc.get_samples())
    t_sample_nuts = time.perf_counter() - t
    t_compile = max(t_first - t_sample_nuts * (a.num_warmup + a.num_samples) / a.num_samples, 0.0)
    post = mc.get_samples(group_by_chain=True)
    steps = float(np.mean(np.asarray(mc.get_extra_fields()["num_steps"])))
    ess_nuts = {n: float(np.ravel(rank_diagnostics(np.asarray(post[n]))[1])[0]) for n in names}

    # ---- random-walk Metropolis on the same unconstrained potential
    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs={"obs": obs},
                            init_strategy=init_to_value(values=best.best_fit))
    pot = info.potential_fn
    z0 = info.param_info.z
    flat0, unravel = jax.flatten_util.ravel_pytree(z0)
    # posterior covariance in the unconstrained space, from the NUTS draws
    trans = info.model_trace
    from numpyro.infer.util import transform_fn
    from numpyro.distributions.transforms import biject_to

    transforms = {n: biject_to(trans[n]["fn"].support) for n in names}
    flat_post = np.asarray(mc.get_samples()[names[0]]).shape[0]
    U = jax.vmap(lambda d: jax.flatten_util.ravel_pytree({n: transforms[n].inv(d[n]) for n in z0})[0])(
        {n: jnp.asarray(mc.get_samples()[n]) for n in z0})
    del transform_fn, flat_post
    d = flat0.size
    cov = np.cov(np.asarray(U).T) * (2.38 ** 2 / d)
    L = jnp.asarray(np.linalg.cholesky(cov + 1e-12 * np.eye(d) * np.trace(cov) / d))

    def u(x):
        return pot(unravel(x))

    def rwmh(key, x0, n):
        def step(carry, k):
            x, ux, acc = carry
            k1, k2 = jax.random.split(k)
            y = x + L @ jax.random.normal(k1, (d,))
            uy = u(y)
            ok = jnp.log(jax.random.uniform(k2)) < ux - uy
            x = jnp.where(ok, y, x)
            ux = jnp.where(ok, uy, ux)
            return (x, ux, acc + ok), x

        (_, _, acc), xs = jax.lax.scan(step, (x0, u(x0), 0), jax.random.split(key, n))
        return xs, acc

    x0 = jnp.asarray(np.asarray(U)[-1])
    rw_jit = jax.jit(rwmh, static_argnums=2)
    t = time.perf_counter()
    jax.block_until_ready(rw_jit(jax.random.PRNGKey(1), x0, 10))  # compile for a short chain
    t_rw_compile_small = time.perf_counter() - t
    t = time.perf_counter()
    jax.block_until_ready(rw_jit(jax.random.PRNGKey(2), x0, a.rw_steps))  # compile + run
    t_rw_first = time.perf_counter() - t
    t = time.perf_counter()
    xs, acc = jax.block_until_ready(rw_jit(jax.random.PRNGKey(3), x0, a.rw_steps))  # cached: run only
    t_rw = time.perf_counter() - t
    t_rw_compile = max(t_rw_first - t_rw, 0.0)
    # back to the constrained parameters, then ESS per parameter
    Z = jax.vmap(unravel)(xs)
    cons = {n: np.asarray(transforms[n](Z[n])) for n in names}
    ess_rw = {n: float(np.ravel(rank_diagnostics(cons[n][None, :])[1])[0]) for n in names}

    nuts_rate = {n: ess_nuts[n] / t_sample_nuts for n in names}
    rw_rate = {n: ess_rw[n] / t_rw for n in names}
    worst_n = min(nuts_rate, key=nuts_rate.get)
    worst_rw = min(rw_rate, key=rw_rate.get)
    out = {
        "machine": {"devices": str(jax.devices()), "cpu_count": __import__("os").cpu_count()},
        "model": "Dresden-II, modified Lindhard k = 0.157 fixed, q + 7 background parameters (8 latent)",
        "nuts": {"num_warmup": a.num_warmup, "num_samples": a.num_samples, "num_chains": a.num_chains,
                 "dense_mass": True, "first_run_s (compile + warmup + draws)": round(t_first, 3),
                 "compile_s (estimated: first run - per-iteration cost x iterations)": round(t_compile, 3),
                 "sampling_s (second run, draws only)": round(t_sample_nuts, 3),
                 "mean_leapfrog_steps": steps, "ess_bulk": ess_nuts, "ess_per_s": nuts_rate,
                 "worst": [worst_n, nuts_rate[worst_n]]},
        "rw_mh": {"kind": "hand-written jitted RW-MH, MVN proposal 2.38^2/d x NUTS posterior covariance "
                          "(unconstrained space, same numpyro potential)",
                  "steps": a.rw_steps, "acceptance": float(acc) / a.rw_steps, "compile_s": round(t_rw_compile, 3),
                  "compile_small_s": round(t_rw_compile_small, 3), "sampling_s": round(t_rw, 3),
                  "ess_bulk": ess_rw, "ess_per_s": rw_rate, "worst": [worst_rw, rw_rate[worst_rw]]},
        "ratio_worst_ess_per_s_nuts_over_rw": nuts_rate[worst_n] / rw_rate[worst_rw],
        "targets": {"nuts_worst_ge_100_ess_per_s": nuts_rate[worst_n] >= 100,
                    "ratio_ge_10": nuts_rate[worst_n] / rw_rate[worst_rw] >= 10},
    }
    print(f"NUTS: first run {t_first:.2f} s (compile ~{t_compile:.2f} s), second run {a.num_samples} draws in "
          f"{t_sample_nuts:.2f} s ({steps:.1f} steps/draw)")
    for n in names:
        print(f"  {n:22s} NUTS ESS {ess_nuts[n]:7.0f}  {nuts_rate[n]:8.1f}/s   RW ESS {ess_rw[n]:7.0f}  {rw_rate[n]:8.1f}/s")
    print(f"worst: NUTS {worst_n} {nuts_rate[worst_n]:.1f} ESS/s; RW {worst_rw} {rw_rate[worst_rw]:.1f} ESS/s "
          f"(acceptance {float(acc) / a.rw_steps:.2f}, {a.rw_steps} steps in {t_rw:.2f} s); ratio "
          f"{out['ratio_worst_ess_per_s_nuts_over_rw']:.1f}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
