"""From experiments and priors to a NumPyro model and a likelihood: one description, every consumer.

    ana = Analysis(load_preset("dresden_ii"), priors={"k": Uniform(0.1, 0.3), "q": Uniform(-4e-4, 2e-4),
                                                       "bkg.dresden_ii.a_M": Normal(1.0, 0.03), ...})
    model = JointModel([ana], shared={"sin2_theta_w": Uniform(0.1, 0.4)})
    model(obs=model.observed())        # a NumPyro model in the model(..., obs=None) style
    model.minus2lnL(values)            # -2 ln L for fits, profiles and scans (same likelihood, same constraints)
    model.fit(fixed=[...]); model.profile("q", qs); model.scan(grid); model.sample(...)

Likelihoods: Poisson for counts, Gaussian with the released errors where a release gives rates
(Dresden-II). Shared parameters (physics: sin^2 theta_W, Z', scalar, NSI, ...) enter every
experiment; local ones (quenching, backgrounds, flux normalisation, ...) belong to one and are
named ``<experiment>:<parameter>`` when several experiments are combined. In ``minus2lnL`` a Normal,
truncated-normal, half-normal or log-normal prior acts as a constraint term (a nuisance pull) and a
uniform or log-uniform prior as bounds only, so the frequentist and Bayesian analyses share their
assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from cevnsjax import experiment as P
from cevnsjax.experiment import Experiment, PreparedExperiment, predict
from cevnsjax.names import check_known
from cevnsjax.stats.infer import LogNormal, LogUniform, Normal, Prior, TruncatedNormal, Uniform, HalfNormal, prior_from_spec
from cevnsjax.stats.likelihood import gaussian_chi2, poisson_log_likelihood

__all__ = ["Analysis", "JointModel", "ContinuousPoisson"]


class ContinuousPoisson(dist.Distribution):
    """Poisson(rate) whose log-probability extends to non-integer counts (Asimov data):
    n ln(mu) - mu - lgamma(n + 1). Samples are ordinary Poisson draws."""

    arg_constraints = {"rate": dist.constraints.positive}
    support = dist.constraints.nonnegative
    pytree_data_fields = ("rate",)

    def __init__(self, rate, *, validate_args=None):
        self.rate = rate
        super().__init__(batch_shape=jnp.shape(rate), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        return jax.random.poisson(key, self.rate, shape=sample_shape + self.batch_shape).astype(jnp.result_type(float))

    def log_prob(self, value):
        return poisson_log_likelihood(value, self.rate, axis=())


@dataclass(frozen=True, eq=False)
class Analysis:
    """One experiment in a model: the experiment, its local free parameters and their priors."""

    experiment: Experiment
    priors: Mapping[str, object] = field(default_factory=dict)
    prepared: PreparedExperiment | None = None

    def __post_init__(self):
        object.__setattr__(self, "priors", {k: _named_prior(k, v) for k, v in dict(self.priors).items()})
        if self.prepared is None:
            object.__setattr__(self, "prepared", self.experiment.prepare())

    @property
    def component_names(self):
        return self.prepared.kernels.component_names


def _bounds(prior: Prior):
    if isinstance(prior, (Uniform, LogUniform)):
        return float(prior.lo), float(prior.hi)
    if isinstance(prior, TruncatedNormal):
        return (None if prior.lo is None else float(prior.lo)), (None if prior.hi is None else float(prior.hi))
    if isinstance(prior, (HalfNormal, LogNormal)):
        return 0.0, None
    return None, None


def _constraint(prior: Prior, x):
    """-ln(prior density) up to a constant for constraint priors; 0 for flat ones (bounds only)."""
    if isinstance(prior, (Normal, TruncatedNormal)):
        return 0.5 * ((x - prior.mu) / prior.sigma) ** 2
    if isinstance(prior, HalfNormal):
        return 0.5 * (x / prior.sigma) ** 2
    if isinstance(prior, LogNormal):
        return 0.5 * ((jnp.log(x) - np.log(prior.median)) / prior.sigma) ** 2
    return 0.0


class JointModel:
    """A NumPyro model and a likelihood over one or more experiments sharing physics parameters."""

    def __init__(self, analyses: Sequence[Analysis], shared: Mapping[str, object] | None = None):
        self.analyses = tuple(analyses)
        if not self.analyses:
            raise ValueError("JointModel needs at least one Analysis")
        names = [a.experiment.name for a in self.analyses]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment names must be unique in a joint model, got {names}")
        self.shared = {k: _named_prior(k, v) for k, v in dict(shared or {}).items()}
        for a in self.analyses:
            P.check_names(list(self.shared) + list(a.priors), a.experiment.defaults, a.component_names, a.experiment)
            clash = set(self.shared) & set(a.priors)
            if clash:
                raise ValueError(f"{sorted(clash)} are both shared and local to {a.experiment.name!r}; choose one")
        self.multi = len(self.analyses) > 1

    # ------------------------------------------------------------------ names and values
    def site(self, a: Analysis, name: str) -> str:
        return f"{a.experiment.name}:{name}" if self.multi else name

    @property
    def priors(self) -> dict[str, Prior]:
        """Every free parameter's site name and prior."""
        out = dict(self.shared)
        for a in self.analyses:
            out.update({self.site(a, k): v for k, v in a.priors.items()})
        return out

    def bounds(self) -> dict:
        return {k: _bounds(p) for k, p in self.priors.items()}

    def init_values(self) -> dict:
        """Starting values: the experiments' defaults (clipped into the prior support)."""
        out = {}
        for a in self.analyses:
            for k in list(self.shared) + list(a.priors):
                s = k if k in self.shared else self.site(a, k)
                v = float(P.get(a.experiment.defaults, k, a.component_names))
                lo, hi = _bounds(self.priors[s])
                if lo is not None and hi is not None:
                    span = hi - lo
                    v = min(max(v, lo + 1e-3 * span), hi - 1e-3 * span)
                elif lo is not None:
                    v = max(v, lo + 1e-12)
                out.setdefault(s, v)
        return out

    def theta(self, a: Analysis, values: Mapping[str, object]):
        """ExperimentParams of analysis ``a`` for site values (missing ones stay at their defaults).

        ``<experiment>:<name>`` goes to that experiment; an unprefixed name to every experiment.
        """
        local = {}
        for k, v in values.items():
            if self.multi and ":" in k:
                exp_name, name = k.split(":", 1)
                if exp_name == a.experiment.name:
                    local[name] = v
            else:  # a shared name, or any name of a single-experiment model (e.g. a scanned one)
                local[k] = v
        return P.apply(a.experiment.defaults, local, a.component_names)

    def expected(self, values: Mapping[str, object]) -> dict:
        """Expected counts (or rates) per experiment for site values."""
        return {a.experiment.name: predict(self.theta(a, values), a.prepared).total for a in self.analyses}

    def observed(self) -> dict:
        out = {}
        for a in self.analyses:
            if a.experiment.observed is None:
                raise ValueError(f"experiment {a.experiment.name!r} has no observed data; use asimov(values)")
            out[a.experiment.name] = jnp.asarray(a.experiment.observed.values)
        return out

    def asimov(self, values: Mapping[str, object] | None = None) -> dict:
        """Asimov data: the expected counts at ``values`` (default: the experiments' defaults)."""
        return {k: jax.lax.stop_gradient(v) for k, v in self.expected(dict(values or {})).items()}

    def _kind(self, a):
        o = a.experiment.observed
        return ("poisson", None) if o is None or o.likelihood == "poisson" else ("gaussian", jnp.asarray(o.errors))

    # ------------------------------------------------------------------ NumPyro model
    def __call__(self, obs: Mapping | None = None):
        values = {k: p.sample(k) for k, p in self.shared.items()}
        for a in self.analyses:
            values.update({self.site(a, k): p.sample(self.site(a, k)) for k, p in a.priors.items()})
        for a in self.analyses:
            mu = predict(self.theta(a, values), a.prepared).total
            name = a.experiment.name
            y = None if obs is None else obs[name]
            kind, err = self._kind(a)
            if kind == "gaussian":
                numpyro.sample(f"obs_{name}", dist.Normal(mu, err).to_event(mu.ndim), obs=y)
            else:
                numpyro.sample(f"obs_{name}", ContinuousPoisson(jnp.maximum(mu, 1e-30)).to_event(mu.ndim), obs=y)

    # ------------------------------------------------------------------ likelihood
    def minus2lnL(self, values: Mapping[str, object], obs: Mapping | None = None):
        """-2 ln L (Poisson relative to the saturated model, i.e. a deviance; Gaussian: chi^2) plus
        -2 ln of the non-flat priors (constraint terms, up to constants)."""
        obs = self.observed() if obs is None else obs
        total = 0.0
        for a in self.analyses:
            mu = predict(self.theta(a, values), a.prepared).total
            kind, err = self._kind(a)
            y = obs[a.experiment.name]
            if kind == "gaussian":
                total = total + gaussian_chi2(y, mu, sigma=err)
            else:
                total = total - 2.0 * poisson_log_likelihood(y, mu, saturated=True)
        for k, p in self.priors.items():
            if k in values:
                total = total + 2.0 * _constraint(p, values[k])
        return total

    def _objective(self, values, obs):
        """The solver's objective: one function object per model, so the compiled solver is reused
        (jit caches it per model, parameter layout and obs structure)."""
        return self.minus2lnL(values, obs)

    def _start(self, init, fixed):
        start = self.init_values()
        if init is not None:
            init = init.best_fit if hasattr(init, "best_fit") and not isinstance(init, Mapping) else dict(init)
            check_known(list(init), list(start), "init parameter")
            start.update({k: float(v) for k, v in init.items()})
        if isinstance(fixed, Mapping):
            check_known(list(fixed), list(start), "fixed parameter")
            start.update({k: float(v) for k, v in fixed.items()})
        elif fixed is not None:
            fixed = [fixed] if isinstance(fixed, str) else list(fixed)
            check_known(fixed, list(start), "fixed parameter")
        return start, fixed

    def fit(self, *, fixed: Mapping | Sequence[str] | None = None, init: Mapping | None = None,
            obs: Mapping | None = None, n_starts: int = 1, seed: int = 0, **kwargs):
        """Maximum likelihood of every free parameter (:func:`cevnsjax.stats.fit.minimize` on
        :meth:`minus2lnL`). ``fixed``: names held at ``init``/the model's start values, or name -> value.
        The compiled solver is cached: a new fixed set costs no new trace."""
        from cevnsjax.stats.fit import minimize

        start, fixed = self._start(init, fixed)
        o = self.observed() if obs is None else obs
        return minimize(self._objective, start, o, bounds=self.bounds(), fixed=fixed, n_starts=n_starts,
                        seed=seed, **kwargs)

    def profile(self, names: str | Sequence[str], values, *, fixed: Mapping | Sequence[str] | None = None,
                init: Mapping | None = None, obs: Mapping | None = None, best=None, **kwargs):
        """Profile likelihood over ``names`` at ``values`` ((G,) for one name, (G, k) for several):
        every other free parameter is re-fitted at each point (warm-started in order). ``best`` (a
        FitResult of this model) sets the reference minimum; by default the model is fitted first."""
        from cevnsjax.stats.fit import profile

        start, fixed = self._start(init, fixed)
        o = self.observed() if obs is None else obs
        names_t = (names,) if isinstance(names, str) else tuple(names)
        check_known(list(names_t), list(start), "profiled parameter")
        if best is None:
            best = self.fit(fixed=fixed, init=start, obs=o)
        return profile(self._objective, best, names_t, values, o, bounds=self.bounds(), fixed=fixed, **kwargs)

    def scan(self, grid, *, profile: Sequence[str] | Mapping | None = None, fixed: Mapping | Sequence[str] | None = None,
             obs: Mapping | None = None, out_dir=None, resume: bool = True, chunk_size: int = 4096,
             progress: bool = True, fingerprint: str | None = None, **kwargs):
        """Delta chi^2 over ``grid`` (a :class:`cevnsjax.stats.scan.Grid`, or axes / "name=spec" strings)
        with :func:`cevnsjax.stats.scan.run_scan` on :meth:`minus2lnL`. ``profile=None`` profiles every
        free parameter that is neither on the grid nor fixed (start values and prior bounds); a list
        of names profiles those; a dict name -> (start, lo, hi) is passed through."""
        from cevnsjax.stats.scan import Grid, parse_axis, run_scan

        if not isinstance(grid, Grid):
            grid = Grid([parse_axis(a, valid_names=None) if isinstance(a, str) else a for a in grid])
        start, fixed = self._start(None, fixed)
        fixed_d = dict(fixed) if isinstance(fixed, Mapping) else {k: start[k] for k in (fixed or [])}
        bounds = self.bounds()
        if profile is None:
            profile = [k for k in start if k not in grid.names and k not in fixed_d]
        if not isinstance(profile, Mapping):
            check_known(list(profile), list(start), "profiled parameter")
            profile = {k: (start[k], *(np.inf * s if b is None else b for b, s in zip(bounds[k], (-1, 1))))
                       for k in profile}
        o = self.observed() if obs is None else obs
        objective = _BoundObjective(self, o)
        return run_scan(objective, grid, fixed=fixed_d, profile=dict(profile), out_dir=out_dir, resume=resume,
                        chunk_size=chunk_size, progress=progress, fingerprint=fingerprint, **kwargs)

    def sample(self, *, obs: Mapping | None = None, **kwargs):
        """NUTS over every free parameter; returns a PosteriorResult (see cevnsjax.stats.infer.run_nuts)."""
        from cevnsjax.stats.infer import run_nuts

        kwargs.setdefault("init_values", self.init_values())
        return run_nuts(self, obs=self.observed() if obs is None else obs, **kwargs)


def _named_prior(name: str, spec):
    """:func:`prior_from_spec`, its error message prefixed with the parameter's name."""
    try:
        return prior_from_spec(spec)
    except ValueError as err:
        raise ValueError(f"prior of {name!r}: {err}") from None


class _BoundObjective:
    """values -> -2 ln L of a model on fixed observations (a picklable callable for run_scan)."""

    def __init__(self, model, obs):
        self.model, self.obs = model, obs
        self.__qualname__ = f"JointModel.minus2lnL[{','.join(a.experiment.name for a in model.analyses)}]"

    def __call__(self, values):
        return self.model.minus2lnL(values, self.obs)
