"""Bayesian inference with NumPyro NUTS, and small validated prior specifications.

``run_nuts(model, *args, ...)`` samples any NumPyro model written in the ``model(..., obs=None)``
style and returns a :class:`~cevnsjax.results.PosteriorResult` with the posterior, sample stats,
pointwise log-likelihood of every observed site, observed data, prior / prior-predictive and
posterior-predictive draws. Nothing here imports ArviZ (GPU machines may lack it); the result
converts to ``InferenceData`` when asked.

Priors::

    priors = {"sin2_theta_w": Uniform(0.1, 0.4), "norm": LogNormal(1.0, 0.1), "bkg": HalfNormal(50.0)}
    def model(n_obs=None):
        p = sample_params(priors)                  # numpyro.sample for each name
        numpyro.sample("obs", dist.Poisson(mu(p)), obs=n_obs)
    res = run_nuts(model, n_obs=data, num_samples=1000, num_chains=4)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS, Predictive, init_to_value, log_likelihood as _log_likelihood
from numpyro.primitives import Messenger

from cevnsjax.results import PosteriorResult

__all__ = [
    "Prior", "Uniform", "LogUniform", "Normal", "TruncatedNormal", "HalfNormal", "LogNormal",
    "PRIOR_KINDS", "prior_from_spec", "sample_params", "check_names", "run_nuts", "model_sites",
    "ConvergenceWarning", "convergence_failures", "convergence_report", "interior_init",
]

CHAIN_METHODS = ("vectorized", "parallel", "sequential")


def check_names(names, valid, what: str = "parameter") -> None:
    """Raise ValueError naming each unknown name, the closest valid one, and all valid choices."""
    from cevnsjax.names import check_known

    check_known(names, valid, what)


# ------------------------------------------------------------------------------------------ priors
def _num(name, v):
    try:
        a = np.asarray(v, float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} = {v!r} must be finite")
    return v


class Prior:
    """A prior distribution; ``distribution()`` gives the numpyro distribution, ``sample(name)`` samples it."""

    def distribution(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, name: str):
        return numpyro.sample(name, self.distribution())

    def _args(self):
        return ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))

    def _fail(self, why):
        raise ValueError(f"{type(self).__name__}({self._args()}): {why}")


@dataclass(frozen=True)
class Uniform(Prior):
    """Flat on [lo, hi]."""

    lo: float
    hi: float

    def __post_init__(self):
        _num("lo", self.lo), _num("hi", self.hi)
        if not np.all(np.asarray(self.lo) < np.asarray(self.hi)):
            self._fail("need lo < hi")

    def distribution(self):
        return dist.Uniform(self.lo, self.hi)


@dataclass(frozen=True)
class LogUniform(Prior):
    """Flat in log on [lo, hi], 0 < lo < hi (couplings, masses)."""

    lo: float
    hi: float

    def __post_init__(self):
        _num("lo", self.lo), _num("hi", self.hi)
        if not np.all(np.asarray(self.lo) > 0):
            self._fail("log-uniform bounds must be positive (lo > 0)")
        if not np.all(np.asarray(self.lo) < np.asarray(self.hi)):
            self._fail("need lo < hi")

    def distribution(self):
        return dist.LogUniform(self.lo, self.hi)


@dataclass(frozen=True)
class Normal(Prior):
    """Gaussian N(mu, sigma), sigma > 0."""

    mu: float
    sigma: float

    def __post_init__(self):
        _num("mu", self.mu), _num("sigma", self.sigma)
        if not np.all(np.asarray(self.sigma) > 0):
            self._fail("sigma must be > 0")

    def distribution(self):
        return dist.Normal(self.mu, self.sigma)


@dataclass(frozen=True)
class TruncatedNormal(Prior):
    """Gaussian N(mu, sigma) truncated to [lo, hi] (either side may be None)."""

    mu: float
    sigma: float
    lo: float | None = None
    hi: float | None = None

    def __post_init__(self):
        _num("mu", self.mu), _num("sigma", self.sigma)
        if not np.all(np.asarray(self.sigma) > 0):
            self._fail("sigma must be > 0")
        if self.lo is None and self.hi is None:
            self._fail("give lo and/or hi (or use Normal)")
        if self.lo is not None:
            _num("lo", self.lo)
        if self.hi is not None:
            _num("hi", self.hi)
        if self.lo is not None and self.hi is not None and not np.all(np.asarray(self.lo) < np.asarray(self.hi)):
            self._fail("need lo < hi")

    def distribution(self):
        return dist.TruncatedNormal(self.mu, self.sigma, low=self.lo, high=self.hi)


@dataclass(frozen=True)
class HalfNormal(Prior):
    """|N(0, sigma)|, sigma > 0 (non-negative amplitudes)."""

    sigma: float

    def __post_init__(self):
        _num("sigma", self.sigma)
        if not np.all(np.asarray(self.sigma) > 0):
            self._fail("sigma must be > 0")

    def distribution(self):
        return dist.HalfNormal(self.sigma)


@dataclass(frozen=True)
class LogNormal(Prior):
    """Log-normal with ``median`` > 0 and width ``sigma`` > 0 of ln(x) (normalisation nuisances)."""

    median: float
    sigma: float

    def __post_init__(self):
        _num("median", self.median), _num("sigma", self.sigma)
        if not np.all(np.asarray(self.median) > 0):
            self._fail("median must be > 0")
        if not np.all(np.asarray(self.sigma) > 0):
            self._fail("sigma must be > 0")

    def distribution(self):
        return dist.LogNormal(np.log(self.median), self.sigma)


PRIOR_KINDS = {"uniform": Uniform, "log_uniform": LogUniform, "normal": Normal,
               "truncated_normal": TruncatedNormal, "half_normal": HalfNormal, "log_normal": LogNormal}


def prior_from_spec(spec) -> Prior:
    """A Prior from a spec: a Prior, ``("uniform", 0, 1)``, or ``{"kind": "uniform", "lo": 0, "hi": 1}``.

    Unknown kinds and keyword names raise, listing the valid ones.
    """
    if isinstance(spec, Prior):
        return spec
    if isinstance(spec, Mapping):
        spec = dict(spec)
        kind = spec.pop("kind", None)
        args, kw = (), spec
    elif isinstance(spec, (tuple, list)) and spec and isinstance(spec[0], str):
        kind, args, kw = spec[0], tuple(spec[1:]), {}
    else:
        raise ValueError(f"prior spec {spec!r}: give a Prior, ('kind', *args) or {{'kind': ..., ...}}; "
                         f"valid kinds: {', '.join(PRIOR_KINDS)}")
    key = str(kind).lower().replace("-", "_")
    key = {"loguniform": "log_uniform", "lognormal": "log_normal", "halfnormal": "half_normal",
           "truncatednormal": "truncated_normal", "gaussian": "normal"}.get(key, key)
    if key not in PRIOR_KINDS:
        check_names([kind], PRIOR_KINDS, what="prior kind")
    cls = PRIOR_KINDS[key]
    valid = [f.name for f in fields(cls)]
    check_names(list(kw), valid, what=f"argument of {cls.__name__}")
    if len(args) > len(valid):
        raise ValueError(f"{cls.__name__} takes at most {len(valid)} arguments ({', '.join(valid)}), got {args}")
    try:
        return cls(*args, **kw)
    except TypeError as e:
        raise ValueError(f"{cls.__name__} needs arguments ({', '.join(valid)}): {e}") from None


def sample_params(priors: Mapping[str, Prior | tuple | dict], valid: Sequence[str] | None = None,
                  prefix: str = "") -> dict:
    """Inside a model: ``numpyro.sample`` every prior; names are checked against ``valid`` if given."""
    if valid is not None:
        check_names(list(priors), valid)
    return {k: prior_from_spec(v).sample(prefix + k) for k, v in priors.items()}


# --------------------------------------------------------------------------------------- sampling
class _Unobserve(Messenger):
    """Turn observed sample sites into latent ones, so Predictive draws them (prior/posterior predictive)."""

    def process_message(self, msg):
        if msg["type"] == "sample" and msg.get("is_observed"):
            msg["value"] = None
            msg["is_observed"] = False


def _predictive_fn(model, observed, args, kwargs):
    """jit(vmap) of: draw the observed sites given one set of latent values (prior or posterior)."""

    def one(key, latent):
        m = numpyro.handlers.seed(numpyro.handlers.substitute(_Unobserve(model), data=latent), key)
        tr = numpyro.handlers.trace(m).get_trace(*args, **kwargs)
        return {k: tr[k]["value"] for k in observed}

    return jax.jit(jax.vmap(one))


def model_sites(model: Callable, *args, **kwargs) -> dict:
    """Names of the model's sites: ``{"latent": [...], "observed": [...], "deterministic": [...]}``,
    and the observed values (``"observed_data"``), from one seeded trace."""
    tr = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace(*args, **kwargs)
    out = {"latent": [], "observed": [], "deterministic": [], "observed_data": {}}
    for name, s in tr.items():
        if s["type"] == "sample":
            if s["is_observed"]:
                out["observed"].append(name)
                out["observed_data"][name] = np.asarray(s["value"])
            elif not s.get("infer", {}).get("is_auxiliary", False):
                out["latent"].append(name)
        elif s["type"] == "deterministic":
            out["deterministic"].append(name)
    return out


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}={v!r} must be a positive integer")
    return int(v)


def run_nuts(model: Callable, *args, num_warmup: int = 500, num_samples: int = 1000, num_chains: int = 4,
             seed: int = 0, progress_bar: bool = True, chain_method: str = "vectorized",
             target_accept_prob: float = 0.8, dense_mass: bool = False, max_tree_depth: int = 10,
             init_values: Mapping | None = None, num_prior_samples: int | None = None,
             posterior_predictive: bool = True, ess_per_chain: float = 100.0, **kwargs) -> PosteriorResult:
    """Run NUTS on ``model(*args, **kwargs)`` and collect every InferenceData group.

    Args:
        num_warmup, num_samples, num_chains: per chain.
        chain_method: "vectorized" (one device, vmapped chains), "parallel" (one chain per device;
            numpyro falls back to sequential with a warning if there are too few devices) or "sequential".
        init_values: optional starting values for named latent sites (others: numpyro's default).
        num_prior_samples: prior / prior-predictive draws (default ``num_chains * num_samples``, which
            reuses the compiled posterior-predictive function; 0 to skip).
        posterior_predictive: draw observed sites once per posterior draw.
        ess_per_chain: bulk-ESS threshold per chain used by ``result.converged``.
        kwargs: passed to the model (e.g. ``obs=data``).

    Returns a PosteriorResult; ``attrs["sampling_time_s"]`` is the wall time of warmup + sampling.
    """
    num_warmup = int(num_warmup) if num_warmup == 0 else _positive_int("num_warmup", num_warmup)
    num_samples = _positive_int("num_samples", num_samples)
    num_chains = _positive_int("num_chains", num_chains)
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method={chain_method!r}; valid choices: {', '.join(CHAIN_METHODS)}")
    if not 0 < target_accept_prob < 1:
        raise ValueError(f"target_accept_prob={target_accept_prob} must lie in (0, 1)")
    sites = model_sites(model, *args, **kwargs)
    if not sites["latent"]:
        raise ValueError("the model has no latent sample sites to infer")
    init = {}
    if init_values:
        check_names(list(init_values), sites["latent"], what="latent site in init_values")
        init["init_strategy"] = init_to_value(values=interior_init(model, init_values, *args, **kwargs))

    key = jax.random.PRNGKey(seed)
    k_mcmc, k_prior, k_pp = jax.random.split(key, 3)
    kernel = NUTS(model, target_accept_prob=target_accept_prob, dense_mass=dense_mass,
                  max_tree_depth=max_tree_depth, **init)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=progress_bar)
    t0 = time.perf_counter()
    mcmc.run(k_mcmc, *args, extra_fields=("diverging", "potential_energy", "num_steps", "accept_prob",
                                          "adapt_state.step_size"), **kwargs)
    samples = jax.device_get(mcmc.get_samples(group_by_chain=True))
    t_sample = time.perf_counter() - t0
    extra = jax.device_get(mcmc.get_extra_fields(group_by_chain=True))

    posterior = {k: np.asarray(v) for k, v in samples.items()}
    stats = {
        "diverging": np.asarray(extra["diverging"], bool),
        "lp": -np.asarray(extra["potential_energy"]),
        "n_steps": np.asarray(extra["num_steps"]),
        "tree_depth": np.floor(np.log2(np.asarray(extra["num_steps"]) + 1)).astype(int),
        "acceptance_rate": np.asarray(extra["accept_prob"]),
        "step_size": np.asarray(extra["adapt_state.step_size"]),
    }
    C, D = num_chains, num_samples
    num_prior_samples = C * D if num_prior_samples is None else int(num_prior_samples)
    flat_latent = {k: np.reshape(posterior[k], (C * D,) + posterior[k].shape[2:]) for k in sites["latent"]}
    unflat = lambda d: {k: np.asarray(v).reshape((C, D) + np.shape(v)[1:]) for k, v in d.items()}

    groups = {"posterior": posterior, "sample_stats": stats, "observed_data": sites["observed_data"]}
    t1 = time.perf_counter()
    if sites["observed"]:
        ll = _log_likelihood(model, flat_latent, *args, parallel=True, **kwargs)
        groups["log_likelihood"] = unflat(jax.device_get(ll))
    predict = _predictive_fn(model, sites["observed"], args, kwargs) if sites["observed"] else None
    if predict is not None and posterior_predictive:
        keys = jax.random.split(k_pp, C * D)
        groups["posterior_predictive"] = unflat(jax.device_get(predict(keys, flat_latent)))
    if num_prior_samples:
        names = sites["latent"] + sites["deterministic"]
        k1, k2 = jax.random.split(k_prior)
        pri = jax.device_get(Predictive(model, num_samples=int(num_prior_samples), return_sites=names,
                                        parallel=True)(k1, *args, **kwargs))
        groups["prior"] = {k: np.asarray(pri[k])[None] for k in names if k in pri}
        if predict is not None:
            keys = jax.random.split(k2, int(num_prior_samples))
            pp = jax.device_get(predict(keys, {k: pri[k] for k in sites["latent"]}))
            groups["prior_predictive"] = {k: np.asarray(v)[None] for k, v in pp.items()}
    attrs = dict(
        inference_library="numpyro", inference_library_version=numpyro.__version__, sampler="NUTS",
        num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains, chain_method=chain_method,
        seed=int(seed), target_accept_prob=float(target_accept_prob), dense_mass=bool(dense_mass),
        sampling_time_s=round(t_sample, 4), predictive_time_s=round(time.perf_counter() - t1, 4),
        latent_sites=sites["latent"], observed_sites=sites["observed"],
        deterministic_sites=sites["deterministic"], device=str(jax.devices()[0].platform),
    )
    result = PosteriorResult(groups, attrs, ess_per_chain=ess_per_chain)
    failures = convergence_failures(result)
    result.attrs.update(converged=not failures, convergence_failures=list(failures))
    if failures:
        warnings.warn(f"NUTS did not converge: {'; '.join(failures)}. Run longer (num_warmup, num_samples), "
                      "raise target_accept_prob or reparameterise before using the posterior",
                      ConvergenceWarning, stacklevel=2)
    return result


class ConvergenceWarning(UserWarning):
    """NUTS failed a convergence test (r_hat, bulk ESS or divergences); the message names it."""


def convergence_failures(result: PosteriorResult, var_names=None) -> list[str]:
    """The convergence tests a NUTS result fails, each naming the test, the site, the value and the
    threshold: r_hat >= ``result.rhat_max`` (1.01), bulk ESS <= ``ess_per_chain`` x chains, divergences > 0.
    ``var_names``: the posterior variables tested (default: the latent sites), e.g. an invariant such as |g|
    in place of a parameter whose sign the likelihood does not identify."""
    ess_min = result.ess_min if result.ess_min is not None else result.ess_per_chain * result.num_chains
    out = []
    for n, (rhat, ess) in result.diagnostics(var_names).items():
        r, e = float(np.max(rhat)), float(np.min(ess))
        if not r < result.rhat_max:  # NaN fails too
            out.append(f"r_hat[{n}] = {r:.4g} (need < {result.rhat_max:g})")
        if not e > ess_min:
            out.append(f"ess_bulk[{n}] = {e:.0f} (need > {ess_min:g})")
    if result.num_divergences:
        out.append(f"{result.num_divergences} divergent transitions (need 0)")
    return out


def convergence_report(result: PosteriorResult, var_names=None) -> dict:
    """JSON-ready convergence summary: converged, the failed tests, divergences, worst r_hat and bulk ESS
    (of ``var_names``, default the latent sites)."""
    diag = result.diagnostics(var_names)
    fails = convergence_failures(result, var_names)
    return {"converged": not fails, "failures": fails, "divergences": int(result.num_divergences),
            "r_hat_max": {n: float(np.max(r)) for n, (r, _) in diag.items()},
            "ess_bulk_min": {n: float(np.min(e)) for n, (_, e) in diag.items()}}


def interior_init(model: Callable, values: Mapping, *args, rel: float = 1e-3, **kwargs) -> dict:
    """``values`` moved off the bounds of each latent site's support (NUTS cannot start on a bound, where the
    unconstrained value is infinite): a value at or beyond a bound goes ``rel`` x the interval width (or
    x max(1, |bound|) for a one-sided support) inside."""
    from numpyro import handlers

    trace = handlers.trace(handlers.seed(model, 0)).get_trace(*args, **kwargs)
    out = {}
    for name, v in values.items():
        v = np.asarray(v, float)
        sup = trace[name]["fn"].support if name in trace and "fn" in trace[name] else None
        lo = np.asarray(getattr(sup, "lower_bound", -np.inf), float)
        hi = np.asarray(getattr(sup, "upper_bound", np.inf), float)
        one_bound = np.where(np.isfinite(lo), lo, np.where(np.isfinite(hi), hi, 0.0))
        width = np.where(np.isfinite(hi - lo), hi - lo, np.maximum(1.0, np.abs(one_bound)))
        step = rel * width
        with np.errstate(invalid="ignore"):  # an infinite bound: lo + step is -inf, never taken
            v = np.where(np.isfinite(lo) & (v <= lo + step), lo + step, v)
            v = np.where(np.isfinite(hi) & (v >= hi - step), hi - step, v)
        out[name] = v
    return out
