"""Named parameters of an experiment: one flat namespace for fits, samplers and scans.

A name addresses one scalar inside :class:`~cevnsjax.experiment.ExperimentParams`:

* physics: ``sin2_theta_w``, ``delta_gp_v``, ``delta_gn_v``, ``g_zprime``, ``m_zprime_MeV``,
  ``g_scalar``, ``m_scalar_MeV``, ``delta_rp_fm``, ``delta_rn_fm``; NSI entries ``eps_u_ee``,
  ``eps_d_mue``, ... (``eps_<q>_<beta><alpha>``, flavours e, mu, tau; off-diagonal names set both
  the (beta, alpha) and (alpha, beta) entries, as for a real symmetric matrix); per-flavour
  ``magnetic_moment_1e10_muB_e`` and ``charge_radius2_1e32_cm2_mu``;
* detector: ``k`` and ``q`` (quenching; aliases of ``quenching.k``, ``quenching.q``), any traced
  field as ``quenching.<f>``, ``resolution.<f>``, ``efficiency.<f>``;
* backgrounds: ``bkg.<name>.<field>`` (e.g. ``bkg.dresden_ii.A``, ``bkg.flat.rate``);
* flux: ``flux_norm`` (multiplies every component), ``flux.<component>`` (e.g. ``flux.bin3``,
  ``flux.U235``); ``signal_scale``.

:func:`valid_names` lists what an experiment accepts; :func:`apply` sets values (pure, jit-able).
"""

from __future__ import annotations

import dataclasses
import difflib

from typing import Mapping

import jax.numpy as jnp

from .experiment import ExperimentParams

__all__ = ["valid_names", "apply", "get", "check_names", "PHYSICS_SCALARS"]

PHYSICS_SCALARS = ("sin2_theta_w", "delta_gp_v", "delta_gn_v", "g_zprime", "m_zprime_MeV", "g_scalar",
                   "m_scalar_MeV", "delta_rp_fm", "delta_rn_fm")
_FL = ("e", "mu", "tau")
_NSI = {f"eps_{q}_{b}{a}": (f"eps_{q}", i, j) for q in ("u", "d") for i, b in enumerate(_FL) for j, a in enumerate(_FL)}
_PER_FLAVOUR = {f"{base}_{f}": (base, i) for base in ("magnetic_moment_1e10_muB", "charge_radius2_1e32_cm2")
                for i, f in enumerate(_FL)}
_ALIASES = {"k": "quenching.k", "q": "quenching.q"}


def _traced_fields(obj) -> list[str]:
    if obj is None or not dataclasses.is_dataclass(obj):
        return []
    return [f.name for f in dataclasses.fields(obj) if not f.metadata.get("static", False)
            and jnp.ndim(getattr(obj, f.name)) == 0]


def _frozen_parts(experiment) -> tuple[str, ...]:
    """Parts of the response an experiment tabulated once and cannot vary (smearing = "grid": resolution)."""
    obs = getattr(experiment, "observable", None)
    return ("resolution",) if getattr(obs, "smearing", "exact") == "grid" else ()


def valid_names(theta: ExperimentParams, component_names=(), experiment=None) -> list[str]:
    """Every parameter name that :func:`apply` accepts for these parameters (and, given the ``experiment``,
    that it can vary: no ``resolution.*`` when its smearing is tabulated once, ``smearing = "grid"``)."""
    names = list(PHYSICS_SCALARS) + list(_NSI) + list(_PER_FLAVOUR) + ["flux_norm", "signal_scale"]
    names += [f"flux.{c}" for c in component_names]
    frozen = _frozen_parts(experiment)
    for part in ("quenching", "resolution", "efficiency"):
        if part not in frozen:
            names += [f"{part}.{f}" for f in _traced_fields(getattr(theta, part))]
    if theta.quenching is not None and {"k", "q"} & set(_traced_fields(theta.quenching)):
        names += [a for a, full in _ALIASES.items() if full.split(".")[1] in _traced_fields(theta.quenching)]
    for b in theta.backgrounds:
        names += [f"bkg.{b.name}.{f}" for f in _traced_fields(b)]
    return names


def check_names(names, theta: ExperimentParams, component_names=(), experiment=None) -> None:
    """Raise ValueError naming each unknown parameter, its closest valid name and the valid choices."""
    valid = valid_names(theta, component_names, experiment)
    for n in names:
        if n.split(".")[0] in _frozen_parts(experiment) and n in valid_names(theta, component_names):
            raise ValueError(f"parameter {n!r} cannot vary: experiment {experiment.name!r} tabulates its resolution "
                             "once (smearing='grid'); build it with smearing='exact' (spec: [detector] smearing = "
                             "\"exact\") to fit the resolution")
        if n not in valid:
            close = difflib.get_close_matches(n, valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown parameter {n!r}.{hint} Valid parameters: {', '.join(valid)}")


def _set_physics(phys, name, value):
    if name in PHYSICS_SCALARS:
        return dataclasses.replace(phys, **{name: value})
    if name in _NSI:
        field, i, j = _NSI[name]
        m = jnp.asarray(getattr(phys, field), dtype=jnp.result_type(value, float))
        m = m.at[i, j].set(value).at[j, i].set(value)
        return dataclasses.replace(phys, **{field: m})
    field, i = _PER_FLAVOUR[name]
    v = jnp.asarray(getattr(phys, field), dtype=jnp.result_type(value, float)).at[i].set(value)
    return dataclasses.replace(phys, **{field: v})


def apply(theta: ExperimentParams, values: Mapping[str, object], component_names=()) -> ExperimentParams:
    """A copy of ``theta`` with named parameters set (no validation: use :func:`check_names` once)."""
    for name, value in values.items():
        name = _ALIASES.get(name, name)
        if name in PHYSICS_SCALARS or name in _NSI or name in _PER_FLAVOUR:
            theta = dataclasses.replace(theta, physics=_set_physics(theta.physics, name, value))
        elif name == "signal_scale":
            theta = dataclasses.replace(theta, signal_scale=value)
        elif name == "flux_norm":
            theta = dataclasses.replace(theta, flux_scale=theta.flux_scale * value)
        elif name.startswith("flux."):
            i = list(component_names).index(name[5:])
            theta = dataclasses.replace(theta, flux_scale=jnp.asarray(theta.flux_scale).at[i].set(value))
        elif name.startswith("bkg."):
            _, bname, field = name.split(".", 2)
            theta = theta.replace_background(bname, **{field: value})
        else:
            part, field = name.split(".", 1)
            theta = dataclasses.replace(theta, **{part: dataclasses.replace(getattr(theta, part), **{field: value})})
    return theta


def get(theta: ExperimentParams, name: str, component_names=()):
    """The current value of a named parameter (for starting points)."""
    name = _ALIASES.get(name, name)
    p = theta.physics
    if name in PHYSICS_SCALARS:
        return getattr(p, name)
    if name in _NSI:
        field, i, j = _NSI[name]
        return jnp.asarray(getattr(p, field))[i, j]
    if name in _PER_FLAVOUR:
        field, i = _PER_FLAVOUR[name]
        return jnp.asarray(getattr(p, field))[i]
    if name == "signal_scale":
        return theta.signal_scale
    if name == "flux_norm":
        return 1.0
    if name.startswith("flux."):
        return jnp.asarray(theta.flux_scale)[list(component_names).index(name[5:])]
    if name.startswith("bkg."):
        _, bname, field = name.split(".", 2)
        return getattr(theta.background(bname), field)
    part, field = name.split(".", 1)
    return getattr(getattr(theta, part), field)
