"""From experiments and priors to a NumPyro model and a likelihood: one description, every consumer.

    ana = Analysis(load_preset("dresden_ii"), priors={"k": Uniform(0.1, 0.3), "q": Uniform(-4e-4, 2e-4),
                                                       "bkg.dresden_ii.a_M": Normal(1.0, 0.03), ...})
    model = JointModel([ana], shared={"sin2_theta_w": Uniform(0.1, 0.4)})
    model(obs=model.observed())        # a NumPyro model in the model(..., obs=None) style
    model.minus2lnL(values)            # -2 ln L for fits, profiles and scans (same likelihood, same constraints)
    model.fit(fixed=[...]); model.profile("q", qs); model.scan(grid); model.sample(...)

A parameter shared by SOME experiments only (e.g. the CsI neutron radius of two CsI data sets, while
Ge and Ar keep theirs) is a tie: ``JointModel(..., ties={"csi:delta_rn_fm": ["coherent_csi_2017:delta_rn_fm",
"coherent_csi_2021:delta_rn_fm"]})`` replaces those local sites by one free parameter (the first site's prior).

Likelihoods: Poisson for counts, Gaussian with the released errors where a release gives rates
(Dresden-II). Shared parameters (physics: sin^2 theta_W, Z', scalar, NSI, ...) enter every
experiment; local ones (quenching, backgrounds, flux normalisation, ...) belong to one and are
named ``<experiment>:<parameter>`` when several experiments are combined. In ``minus2lnL`` a Normal,
truncated-normal, half-normal or log-normal prior acts as a constraint term (a nuisance pull) and a
uniform or log-uniform prior as bounds only, so the frequentist and Bayesian analyses share their
assumptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from cevnsjax import experiment as P
from cevnsjax.experiment import Experiment, PreparedExperiment, predict
from cevnsjax.names import check_known
from cevnsjax.stats.infer import HalfNormal, LogNormal, LogUniform, Normal, Prior, TruncatedNormal, Uniform, prior_from_spec
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


def _constraint_residual(prior: Prior, x):
    """r with -2 ln(prior density) = r^2 + constant for constraint priors; None for flat ones (bounds only)."""
    if isinstance(prior, (Normal, TruncatedNormal)):
        return (x - prior.mu) / prior.sigma
    if isinstance(prior, HalfNormal):
        return x / prior.sigma
    if isinstance(prior, LogNormal):
        return (jnp.log(x) - np.log(prior.median)) / prior.sigma
    return None


def _constraint(prior: Prior, x):
    """-ln(prior density) up to a constant for constraint priors; 0 for flat ones (bounds only)."""
    r = _constraint_residual(prior, x)
    return 0.0 if r is None else 0.5 * r**2


class JointModel:
    """A NumPyro model and a likelihood over one or more experiments sharing physics parameters."""

    def __init__(self, analyses: Sequence[Analysis], shared: Mapping[str, object] | None = None,
                 ties: Mapping[str, Sequence[str]] | None = None):
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
        self.ties = {k: tuple(v) for k, v in dict(ties or {}).items()}
        self._check_ties()

    def _check_ties(self):
        local = self._site_priors()
        seen = set()
        for k, sites in self.ties.items():
            if k in local or k in self.shared:
                raise ValueError(f"tie {k!r}: the name is already a parameter of the model; choose another name")
            if len(sites) < 2:
                raise ValueError(f"tie {k!r}: needs at least two local sites, got {list(sites)}")
            for s in sites:
                if s not in local:
                    raise ValueError(f"tie {k!r}: {s!r} is not a local free parameter; choose from {sorted(local)}")
                if s in seen:
                    raise ValueError(f"tie {k!r}: {s!r} is already tied to another parameter")
                seen.add(s)

    # ------------------------------------------------------------------ names and values
    def site(self, a: Analysis, name: str) -> str:
        return f"{a.experiment.name}:{name}" if self.multi else name

    def _site_priors(self) -> dict[str, Prior]:
        out = dict(self.shared)
        for a in self.analyses:
            out.update({self.site(a, k): v for k, v in a.priors.items()})
        return out

    @property
    def priors(self) -> dict[str, Prior]:
        """Every free parameter's name and prior (a tie replaces its sites, with the first site's prior)."""
        out = self._site_priors()
        for k, sites in self.ties.items():
            p = out[sites[0]]
            for s in sites:
                del out[s]
            out[k] = p
        return out

    @property
    def names(self) -> list[str]:
        """The free parameters, in the order of :attr:`priors`."""
        return list(self.priors)

    def expand_ties(self, values: Mapping[str, object]) -> dict:
        """Site values: each tie's value copied to its sites."""
        v = dict(values)
        for k, sites in self.ties.items():
            if k in v:
                x = v.pop(k)
                v.update({s: x for s in sites})
        return v

    def bounds(self) -> dict:
        return {k: _bounds(p) for k, p in self.priors.items()}

    def init_values(self) -> dict:
        """Starting values: the experiments' defaults (clipped into the prior support)."""
        out = {}
        priors = self._site_priors()
        for a in self.analyses:
            for k in list(self.shared) + list(a.priors):
                s = k if k in self.shared else self.site(a, k)
                v = float(P.get(a.experiment.defaults, k, a.component_names))
                lo, hi = _bounds(priors[s])
                if lo is not None and hi is not None:
                    span = hi - lo
                    v = min(max(v, lo + 1e-3 * span), hi - 1e-3 * span)
                elif lo is not None:
                    v = max(v, lo + 1e-12)
                out.setdefault(s, v)
        for k, sites in self.ties.items():
            out[k] = out[sites[0]]
            for s in sites:
                out.pop(s, None)
        return out

    def theta(self, a: Analysis, values: Mapping[str, object]):
        """ExperimentParams of analysis ``a`` for site values (missing ones stay at their defaults).

        ``<experiment>:<name>`` goes to that experiment; an unprefixed name to every experiment; a tie to
        its sites.
        """
        local = {}
        for k, v in self.expand_ties(values).items():
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
        """The NumPyro model: the priors' sites and one observed site ``obs_<experiment>`` per experiment.
        Observed sites are batched over the observable bins (no ``to_event``), so ``log_likelihood``
        holds one value per bin (pointwise, as ``arviz.loo`` / ``waic`` need); the summed log density
        is the same."""
        values = {k: p.sample(k) for k, p in self.priors.items()}
        for a in self.analyses:
            mu = predict(self.theta(a, values), a.prepared).total
            name = a.experiment.name
            y = None if obs is None else obs[name]
            kind, err = self._kind(a)
            if kind == "gaussian":
                numpyro.sample(f"obs_{name}", dist.Normal(mu, err), obs=y)
            else:
                numpyro.sample(f"obs_{name}", ContinuousPoisson(jnp.maximum(mu, 1e-30)), obs=y)

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

    def gaussian(self) -> bool:
        """True when every experiment has a Gaussian likelihood (then :meth:`residuals` exists)."""
        return all(self._kind(a)[0] == "gaussian" for a in self.analyses)

    def signals(self, values: Mapping[str, object]) -> dict:
        """Expected signal counts per experiment (no background) for site values."""
        return {a.experiment.name: predict(self.theta(a, values), a.prepared).signal for a in self.analyses}

    def residuals(self, values: Mapping[str, object], obs: Mapping | None = None, signals: Mapping | None = None):
        """Normalised residuals r with ``sum(r**2) == minus2lnL(values, obs)`` (Gaussian experiments only):
        (y - mu) / sigma per bin of every experiment, then one (x - mu) / sigma per constraint prior.
        ``signals`` (from :meth:`signals`) stands for the signal part of mu, the background being
        recomputed from ``values``: valid while ``values`` differ from those of ``signals`` only in
        background parameters."""
        if not self.gaussian():
            raise ValueError("residuals need Gaussian likelihoods for every experiment; "
                             f"{[a.experiment.name for a in self.analyses if self._kind(a)[0] != 'gaussian']} are "
                             "Poisson: use minus2lnL")
        obs = self.observed() if obs is None else obs
        out = []
        for a in self.analyses:
            pred = predict(self.theta(a, values), a.prepared)
            mu = pred.total if signals is None else signals[a.experiment.name] + pred.background
            out.append(jnp.ravel((obs[a.experiment.name] - mu) / self._kind(a)[1]))
        for k, p in self.priors.items():
            if k in values:
                r = _constraint_residual(p, values[k])
                if r is not None:
                    out.append(jnp.atleast_1d(jnp.asarray(r, out[0].dtype)))
        return jnp.concatenate(out)

    def is_background(self, name: str) -> bool:
        """Whether parameter ``name`` (a site, a tie, or a shared name) only changes backgrounds."""
        sites = self.ties.get(name, (name,))
        local = [s.split(":", 1)[1] if self.multi and ":" in s else s for s in sites]
        return all(n.startswith("bkg.") and name not in self.shared for n in local)

    def scan_objective(self, obs: Mapping | None = None, profile: Sequence[str] = ()):
        """The objective :meth:`scan` hands to :func:`cevnsjax.stats.scan.run_scan` (a ScanObjective).

        Every experiment Gaussian: the residuals with the Gauss-Newton step (the exact Hessian of the
        chi^2 costs 5-15x more per step with a handful of nuisances); in addition, when every
        ``profile`` parameter is a background parameter, the signals are computed once per grid point
        (``precompute``) and only the backgrounds inside the Newton loop. Otherwise -2 ln L with the
        exact Hessian. The same minimum either way (tests/test_model.py)."""
        from cevnsjax.stats.scan import ScanObjective

        o = self.observed() if obs is None else obs
        if not self.gaussian():
            return ScanObjective(_BoundObjective(self, o))
        if profile and all(self.is_background(k) for k in profile):
            return ScanObjective(_BoundResiduals(self, o, split=True), precompute=_BoundSignals(self),
                                 hessian="gauss-newton")
        return ScanObjective(_BoundResiduals(self, o, split=False), hessian="gauss-newton")

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
             progress: bool = True, fingerprint: str | None = None, solver: str = "auto", **kwargs):
        """Delta chi^2 over ``grid`` (a :class:`cevnsjax.stats.scan.Grid`, or axes / "name=spec" strings)
        with :func:`cevnsjax.stats.scan.run_scan`. ``profile=None`` profiles every
        free parameter that is neither on the grid nor fixed (start values and prior bounds); a list
        of names profiles those; a dict name -> (start, lo, hi) is passed through. ``solver``: "auto"
        (:meth:`scan_objective`: Gauss-Newton on the residuals, with precomputed signals, where the
        likelihoods allow it) or "exact" (:meth:`minus2lnL` with the exact Hessian)."""
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
        if solver not in ("auto", "exact"):
            raise ValueError(f"solver={solver!r}; use 'auto' (Gauss-Newton where the likelihoods allow it) or 'exact'")
        objective = self.scan_objective(o, list(profile)) if solver == "auto" else _BoundObjective(self, o)
        return run_scan(objective, grid, fixed=fixed_d, profile=dict(profile), out_dir=out_dir, resume=resume,
                        chunk_size=chunk_size, progress=progress, fingerprint=fingerprint, **kwargs)

    def sample(self, *, obs: Mapping | None = None, model_fn=None, **kwargs):
        """NUTS over every free parameter; returns a PosteriorResult (see cevnsjax.stats.infer.run_nuts)
        whose observed sites carry the observables' bin centres (:meth:`observed_coords`) and whose
        parameters carry their units (:meth:`parameter_units`). ``model_fn``: this model wrapped by a
        NumPyro handler (e.g. a reparameterisation such as
        :func:`cevnsjax.analyses.dresden_ii.sampling_model`), sampled in its place."""
        from cevnsjax.stats.infer import run_nuts

        kwargs.setdefault("init_values", self.init_values())
        res = run_nuts(self if model_fn is None else model_fn, obs=self.observed() if obs is None else obs, **kwargs)
        res.attrs.setdefault("parameter_units", self.parameter_units())
        res.set_observed_coords(self.observed_coords())
        return res

    def observed_coords(self) -> dict:
        """Per observed site ``obs_<experiment>``: ``dims`` (e.g. ``["E_ee_keV"]``, or
        ``["PE", "t_us"]`` with arrival times; prefixed ``<experiment>_`` when several experiments are
        combined), ``coords`` (bin centres per dim), ``edges``, ``units`` per dim and the values'
        ``units`` / ``long_name`` (counts, or the released rate of a Gaussian likelihood)."""
        from cevnsjax.reporting import observable_axis

        out = {}
        for a in self.analyses:
            ob, name = a.experiment.observable, a.experiment.name
            pre = f"{name}_" if self.multi else ""
            e = np.asarray(ob.edges, float)
            axes = [(ob.kind, e, observable_axis(ob.kind)[1])]
            if ob.time_edges_us is not None:
                axes.append(("t_us", np.asarray(ob.time_edges_us, float), "us"))
            o = a.experiment.observed
            gauss = o is not None and o.likelihood == "gaussian"
            out[f"obs_{name}"] = {
                "dims": [pre + d for d, _, _ in axes],
                "coords": {pre + d: (0.5 * (x[1:] + x[:-1])).tolist() for d, x, _ in axes},
                "edges": {pre + d: x.tolist() for d, x, _ in axes},
                "units": {pre + d: u for d, _, u in axes},
                "values_units": "released rate per bin" if gauss else "counts",
                "long_name": f"{name}: " + ((o.label or "observed rate") if gauss else "counts per bin"),
            }
        return out

    def parameter_units(self) -> dict:
        """Free parameter -> unit (:func:`cevnsjax.reporting.parameter_unit`; None where not known)."""
        from cevnsjax.reporting import parameter_unit

        kinds = {a.experiment.name: a.experiment.observable.kind for a in self.analyses}
        first = self.analyses[0].experiment.observable.kind
        out = {}
        for k in self.names:
            exp = k.split(":", 1)[0] if self.multi and ":" in k else None
            out[k] = parameter_unit(k, kinds.get(exp, first))
        return out


def _named_prior(name: str, spec):
    """:func:`prior_from_spec`, its error message prefixed with the parameter's name."""
    try:
        return prior_from_spec(spec)
    except ValueError as err:
        raise ValueError(f"prior of {name!r}: {err}") from None


class _BoundResiduals:
    """values[, signals] -> residuals of a Gaussian model on fixed observations (see JointModel.residuals)."""

    def __init__(self, model, obs, split: bool):
        self.model, self.obs, self.split = model, obs, split
        self.__qualname__ = f"JointModel.residuals[{','.join(a.experiment.name for a in model.analyses)}]"

    def __call__(self, values, signals=None):
        return self.model.residuals(values, self.obs, signals if self.split else None)


class _BoundSignals:
    """values -> signals per experiment (the precomputed part of a background-only profile)."""

    def __init__(self, model):
        self.model = model
        self.__qualname__ = f"JointModel.signals[{','.join(a.experiment.name for a in model.analyses)}]"

    def __call__(self, values):
        return self.model.signals(values)


class _BoundObjective:
    """values -> -2 ln L of a model on fixed observations (a picklable callable for run_scan)."""

    def __init__(self, model, obs):
        self.model, self.obs = model, obs
        self.__qualname__ = f"JointModel.minus2lnL[{','.join(a.experiment.name for a in model.analyses)}]"

    def __call__(self, values):
        return self.model.minus2lnL(values, self.obs)
