"""Benchmark: one expected-counts evaluation for the Dresden-II preset (130 bins, modified Lindhard,
Ge resolution, the published background model), value and gradient of the chi^2 with respect to
(k, q), the seven background parameters and sin^2 theta_W. Jitted, no recompilation between
parameter values (checked). Both response paths are measured in the same run: ``smearing = "exact"``
(Gaussian bin probabilities of every recoil node at every call) and ``smearing = "grid"`` (the
resolution tabulated once by ``prepare()``, nodes deposited on the grid: the preset's setting), with
their ratio and their largest difference in the chi^2. Baseline for the jit: the same prediction
evaluated op by op (no jit), as a script would do it. Times: best of 10 batches of 30 calls.
Run ``python benchmarks/bench_experiment.py``.
Needs the published data folder ($CEVNSJAX_DATA, default ../shared/data).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

import cevnsjax as cj
from cevnsjax.detector.quenching import ModifiedLindhard
from cevnsjax.experiment import predict
from cevnsjax.io.presets.dresden_ii import DresdenIIBackground
from cevnsjax.io.spec import experiment_from_spec, load_spec

REPEAT, BATCHES = 30, 10


def timeit(fn, repeat=REPEAT, batches=BATCHES):
    """Seconds per call: the best of ``batches`` means over ``repeat`` calls (robust on a shared machine)."""
    fn()
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


def measure(ex, eager: bool):
    t0 = time.perf_counter()
    prep = ex.prepare()
    r = dict(prep=time.perf_counter() - t0, prepared=prep)
    obs = ex.observed
    y, err = jnp.asarray(obs.values), jnp.asarray(obs.errors)
    th0 = ex.defaults
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
    r["c1"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(vg(x0))
    r["c2"] = time.perf_counter() - t0
    r["f"] = timeit(lambda: jax.block_until_ready(f(x0)))
    r["vg"] = timeit(lambda: jax.block_until_ready(vg(x0 * 1.0001)))
    r["traces"] = len(traces)
    r["chi2"] = [float(f(x0.at[1].set(q))) for q in (-3e-4, 0.0, 3e-4)]
    if eager:
        with jax.disable_jit():
            r["eager"] = timeit(lambda: jax.block_until_ready(chi2(x0)), repeat=1, batches=3)
    return r


def main():
    cj.enable_x64()
    spec = load_spec("dresden_ii")
    spec["detector"]["quenching"] = {"model": "modified_lindhard", "k": 0.157, "q": 0.0}
    runs = {}
    for mode in ("exact", "grid"):
        spec["detector"]["smearing"] = mode
        ex = experiment_from_spec(spec)
        runs[mode] = measure(ex, eager=mode == "exact")
    e, g = runs["exact"], runs["grid"]
    pe, pg = e["prepared"], g["prepared"]
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, float64")
    print(f"Dresden-II preset: 130 bins, {pe.kernels.E_R_MeV.shape[1]} recoil nodes x {len(pe.kernels.isotope_names)} "
          f"isotopes, {len(pe.kernels.component_names)} flux components; grid smearing: {pg.smear.shape[0] // 2} points, "
          f"step {pg.smear_step * 1e3:.2f} eV from {pg.smear_lo:.3f} keVee")
    print(f"  {'':30s}{'exact':>10s}{'grid':>10s}   exact/grid")
    print(f"  {'preparation (once) [ms]':30s}{e['prep'] * 1e3:10.1f}{g['prep'] * 1e3:10.1f}")
    print(f"  {'compile chi2 [ms]':30s}{e['c1'] * 1e3:10.1f}{g['c1'] * 1e3:10.1f}")
    print(f"  {'compile value+grad [ms]':30s}{e['c2'] * 1e3:10.1f}{g['c2'] * 1e3:10.1f}")
    print(f"  {'chi2 (value) [us]':30s}{e['f'] * 1e6:10.1f}{g['f'] * 1e6:10.1f}   {e['f'] / g['f']:.2f}x")
    print(f"  {'chi2 value and gradient [us]':30s}{e['vg'] * 1e6:10.1f}{g['vg'] * 1e6:10.1f}   {e['vg'] / g['vg']:.2f}x"
          "   (10 parameters; target <= 100 us)")
    dchi2 = max(abs(a - b) for a, b in zip(e["chi2"], g["chi2"]))
    print(f"  chi2 at q = -3e-4, 0, 3e-4: exact {', '.join(f'{c:.6f}' for c in e['chi2'])}; "
          f"largest grid - exact {dchi2:.1e}")
    print(f"  op-by-op baseline (no jit)  {e['eager'] * 1e3:9.1f} ms   -> jit speed-up {e['eager'] / e['f']:.0f}x (exact), "
          f"{e['eager'] / g['f']:.0f}x (grid)")
    print(f"  traces for 2 functions over {2 * (REPEAT * BATCHES + 2)} calls: exact {e['traces']}, grid {g['traces']} "
          "(no recompilation between values)")


if __name__ == "__main__":
    main()
