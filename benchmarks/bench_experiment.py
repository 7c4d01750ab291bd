"""Benchmark: one expected-counts evaluation for the Dresden-II preset (130 bins, modified Lindhard,
Ge resolution, the published background model), value and gradient of the chi^2 with respect to
(k, q), the seven background parameters and sin^2 theta_W. Jitted, no recompilation between
parameter values (checked). Baseline in the same run: the same prediction with the response
evaluated op by op (no jit), as a script would do it. Run ``python benchmarks/bench_experiment.py``.
Needs the published data folder ($CEVNSJAX_DATA, default ../shared/data).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

import cevnsjax as cj
from cevnsjax.experiment import predict
from cevnsjax.experiments.dresden_ii import DresdenIIBackground
from cevnsjax.quenching import ModifiedLindhard
from cevnsjax.spec import experiment_from_spec, load_spec


def timeit(fn, repeat=300):
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def main():
    cj.enable_x64()
    spec = load_spec("dresden_ii")
    spec["detector"]["quenching"] = {"model": "modified_lindhard", "k": 0.157, "q": 0.0}
    ex = experiment_from_spec(spec)
    t0 = time.perf_counter()
    prep = ex.prepare()
    t_prep = time.perf_counter() - t0
    obs = ex.observed
    y, err = jnp.asarray(obs.values), jnp.asarray(obs.errors)
    th0 = ex.defaults
    n_nodes = prep.kernels.E_R_MeV.shape[1]

    traces = []

    def chi2(x):
        traces.append(1)
        th = th0.replace(quenching=ModifiedLindhard(32.0, 72.63, k=x[0], q=x[1]),
                         backgrounds=(DresdenIIBackground(*x[2:9]),), physics=th0.physics.replace(sin2_theta_w=x[9]))
        return jnp.sum(((y - predict(th, prep).total) / err) ** 2)

    x0 = jnp.array([0.157, -1e-4, 14.0, 139.0, 3.9, 84.6, 1.292, 0.0696, 1.0, 0.23857])
    f = jax.jit(chi2)
    vg = jax.jit(jax.value_and_grad(chi2))
    t0 = time.perf_counter()
    jax.block_until_ready(f(x0))
    t_c1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(vg(x0))
    t_c2 = time.perf_counter() - t0
    t_f = timeit(lambda: jax.block_until_ready(f(x0)))
    t_vg = timeit(lambda: jax.block_until_ready(vg(x0 * 1.0001)))
    n_traces = len(traces)
    with jax.disable_jit():
        t_eager = timeit(lambda: jax.block_until_ready(chi2(x0)), repeat=3)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, float64")
    print(f"Dresden-II preset: 130 bins, {n_nodes} recoil nodes x {len(prep.kernels.isotope_names)} isotopes, "
          f"{len(prep.kernels.component_names)} flux components")
    print(f"  preparation (once)          {t_prep * 1e3:9.1f} ms")
    print(f"  compile chi2 / value+grad   {t_c1 * 1e3:9.1f} ms / {t_c2 * 1e3:.1f} ms")
    print(f"  chi2 (value)                {t_f * 1e6:9.1f} us")
    print(f"  chi2 value and gradient     {t_vg * 1e6:9.1f} us (10 parameters; target <= 100 us)")
    print(f"  op-by-op baseline (no jit)  {t_eager * 1e3:9.1f} ms   -> jit speed-up {t_eager / t_f:.0f}x")
    print(f"  traces for 2 functions over {2 * 300 + 2} calls: {n_traces} (no recompilation between values)")


if __name__ == "__main__":
    main()
