"""Benchmark: recoil spectra from prepared kernels against a straightforward scipy.quad implementation.

(a) a 100-point CsI spectrum at the SNS (pion DAR, three flavours, prompt line exact);
(b) a 100-point Ge spectrum at a 2.96 GW reactor at 10.39 m (Huber-Mueller fits).
Prints kernel preparation, compile, forward and value-and-gradient times (gradient with respect to
every field of PhysicsParams), the scipy baseline measured in the same run, the ratio and the
agreement. Not a timed test; run ``python benchmarks/bench_rates.py``.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate

import cevnsjax as cj
from cevnsjax.physics.nuclei import Target
from cevnsjax.sources import PionDAR, Reactor

N_POINTS = 100


def scipy_spectrum(target, source, er_keV):
    """Per-point scipy.quad of flux x dsigma/dE_R, the way peer codes do it (SM, Helm, full kinematics)."""
    t = Target.from_formula(target)
    hb = 197.3269804
    gf = 1.1663787e-11
    comps = source.components()
    out = []
    for er in er_keV * 1e-3:
        tot = 0.0
        for iso, nT in zip(t.isotopes, t.nuclei_per_kg()):
            M, Z, N, A = iso.mass_MeV, iso.Z, iso.N, iso.A
            c = 1.23 * A ** (1 / 3) - 0.6
            r0 = math.sqrt(c * c + 7 / 3 * math.pi**2 * 0.52**2 - 5 * 0.81)
            q = math.sqrt(2 * M * er + er * er) / hb
            x = q * r0
            F = 3 * (math.sin(x) - x * math.cos(x)) / x**3 * math.exp(-(q * 0.9) ** 2 / 2)
            qw = Z * (0.5 - 2 * 0.23857) - 0.5 * N
            emin = 0.5 * (er + math.sqrt(er * er + 2 * M * er))

            def ds(E):
                kin = 1 - M * er / (2 * E * E) - er / E + er * er / (2 * E * E)
                return gf**2 * M / math.pi * qw**2 * F**2 * max(kin, 0.0) * (hb * 1e-13) ** 2

            for comp in comps:
                if hasattr(comp, "density"):
                    hi = comp.energy_max
                    if emin < hi:
                        pts = [b for b in comp.breakpoints if emin < b < hi]
                        tot += nT * integrate.quad(lambda E: float(comp.density(np.array([E]))[0]) * ds(E), emin, hi,
                                                   epsabs=0, epsrel=1e-10, limit=200, points=pts or None)[0]
                elif comp.energy >= emin:
                    tot += nT * comp.flux * ds(comp.energy)
        out.append(tot * 86400 * 1e-3)
    return np.array(out)


def timeit(fn, repeat=200):
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def bench(label, target, source, er):
    t0 = time.perf_counter()
    k = cj.prepare(target, source, E_R_keV=er)
    t_prep = time.perf_counter() - t0
    p = cj.PhysicsParams().astype(jnp.float64)

    fwd = jax.jit(cj.recoil_spectrum)
    loss = jax.jit(jax.value_and_grad(lambda p, k: jnp.sum(jnp.log(cj.recoil_spectrum(p, k) + 1e-30))))
    t0 = time.perf_counter()
    fwd.lower(p, k).compile()
    t_c1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    loss.lower(p, k).compile()
    t_c2 = time.perf_counter() - t0
    t_fwd = timeit(lambda: fwd(p, k).block_until_ready())
    t_vg = timeit(lambda: jax.block_until_ready(loss(p, k)))

    t0 = time.perf_counter()
    ref = scipy_spectrum(target, source, er)
    t_scipy = time.perf_counter() - t0
    ours = np.asarray(fwd(p, k))
    agree = float(np.max(np.abs(ours / ref - 1)))
    print(f"\n({label}) {target}, {N_POINTS} points, {len(k.component_names)} flux components, {len(k.isotope_names)} isotopes")
    print(f"  kernel preparation (once)     {t_prep * 1e3:9.2f} ms")
    print(f"  compile forward / value+grad  {t_c1 * 1e3:9.2f} ms / {t_c2 * 1e3:.2f} ms")
    print(f"  forward                       {t_fwd * 1e6:9.2f} us")
    print(f"  value and gradient (13 fields){t_vg * 1e6:9.2f} us   ratio to forward {t_vg / t_fwd:.2f}x (target <= 3x)")
    print(f"  scipy.quad baseline           {t_scipy * 1e3:9.2f} ms")
    print(f"  speed-up vs scipy (forward)   {t_scipy / t_fwd:9.0f}x (target >= 300x)")
    print(f"  speed-up incl. kernel prep    {t_scipy / (t_fwd + t_prep):9.1f}x (first spectrum of an experiment)")
    print(f"  max relative difference       {agree:9.2e} (target <= 1e-5)")
    return dict(t_fwd=t_fwd, t_vg=t_vg, t_scipy=t_scipy, agree=agree)


def main():
    cj.enable_x64()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, float64")
    bench("a", "CsI", PionDAR.coherent_csi_2017(), np.geomspace(1.0, 46.0, N_POINTS))
    bench("b", "Ge", Reactor.dresden_ii(), np.geomspace(0.05, 1.9, N_POINTS))


if __name__ == "__main__":
    main()
