"""The specification reference (issue 13): schema == parser, docs/spec.md generated from the schema,
`cevnsjax init` writes a runnable template, `cevnsjax params` lists the free parameters, and every
command-line option has help text showing its default."""

import argparse
import copy
import json
import re
import tomllib
import warnings
from pathlib import Path

import pytest

import cevnsjax.io.spec as spec_mod
from cevnsjax.cli import build_parser, main
from cevnsjax.io.schema import TABLES, TEMPLATE, accepted_keys, markdown
from cevnsjax.rates import FluxValidityWarning

ROOT = Path(__file__).resolve().parents[1]

# one variant table per (path, variant): the keys each needs to reach the parser's key check
_VARIANTS = {
    ("source", "reactor"): {"type": "reactor", "power_GW": 3.0, "distance_m": 20.0},
    ("source", "reactor+tables"): {"type": "reactor", "power_GW": 3.0, "distance_m": 20.0, "low_energy_tables": True},
    ("source", "pion_dar"): {"type": "pion_dar", "preset": "sns"},
    ("source", "tabulated"): {"type": "tabulated", "path": "/nonexistent/flux.txt"},
    ("detector.quenching", "lindhard"): {"model": "lindhard"},
    ("detector.quenching", "modified_lindhard"): {"model": "modified_lindhard", "k": 0.157},
    ("detector.quenching", "constant"): {"model": "constant", "value": 0.2},
    ("detector.quenching", "tabulated"): {"model": "tabulated", "path": "/nonexistent/qf.txt"},
    ("detector.quenching", "polynomial"): {"model": "polynomial", "coefficients": [0.05, 4.3, -111.7, 840.4]},
    ("detector.resolution", "ge"): {"model": "ge"},
    ("detector.resolution", "gaussian"): {"model": "gaussian", "sigma0": 0.05},
    ("detector.resolution", "poisson_pe"): {"model": "poisson_pe", "light_yield": 13.35},
    ("detector.resolution", "gamma_pe"): {"model": "gamma_pe"},
    ("detector.efficiency", "coherent_2017"): {"model": "coherent_2017"},
    ("detector.efficiency", "coherent_2021"): {"model": "coherent_2021"},
    ("detector.efficiency", "tabulated"): {"model": "tabulated", "path": "/nonexistent/eff.txt"},
    ("detector.efficiency", "constant"): {"model": "constant", "value": 0.9},
    ("detector.time_efficiency", "coherent_2021"): {"model": "coherent_2021"},
    ("background", "flat"): {"type": "flat", "rate": 1.0},
    ("background", "exponential"): {"type": "exponential", "rate0": 1.0, "decay": 0.2},
    ("background", "gaussian_line"): {"type": "gaussian_line", "amplitude": 1.0, "centre": 0.5, "sigma": 0.05},
    ("background", "template"): {"type": "template", "name": "tpl", "counts": [1.0] * 40},
}


def _spec_with(path, table):
    spec = tomllib.loads(TEMPLATE)
    spec["data"] = {"loader": "dresden_ii", "path": "/nonexistent"}
    if path == "background":
        spec["background"] = [table]
    elif path.startswith("detector."):
        spec["detector"][path.split(".", 1)[1]] = table
    else:
        spec[path] = table
    return spec


def test_schema_and_parser_accept_the_same_keys(monkeypatch):
    """Every table the parser checks, with its required and optional keys, is in the schema, and every
    schema table is reached by the parser with exactly those keys (so docs/spec.md cannot drift)."""
    seen, choices = {}, {}
    selectors = {t.path: t.selector for t in TABLES}
    orig_keys, orig_choice = spec_mod._check_keys, spec_mod._choice

    def check_keys(table, where, required=(), optional=()):
        path = re.sub(r"\[\d+\]$", "", where)
        path = "spec" if path == "spec" else path
        sel = selectors.get(path)
        variant = table.get(sel) if sel and isinstance(table, dict) else None
        seen[(path, variant)] = (frozenset(required), frozenset(optional))
        return orig_keys(table, where, required, optional)

    def choice(table, key, where, valid, default=None):
        path = re.sub(r"\[\d+\]$", "", where)
        sel = selectors.get(path)
        variant = table.get(sel) if sel and key != sel else None
        choices[(path, variant, key)] = tuple(c for c in valid if c is not None)
        return orig_choice(table, key, where, valid, default)

    monkeypatch.setattr(spec_mod, "_check_keys", check_keys)
    monkeypatch.setattr(spec_mod, "_choice", choice)
    for (path, _), table in _VARIANTS.items():
        spec = _spec_with(path, table)
        try:
            spec_mod.experiment_from_spec(copy.deepcopy(spec), with_data=False)
        except Exception:  # noqa: BLE001 - missing files etc. come after the key check, which is what is recorded
            pass
        spec_mod.fit_priors(spec)
    documented = accepted_keys()
    assert set(seen) == set(documented), (set(seen) ^ set(documented))
    for k, (req, opt) in seen.items():
        assert documented[k] == (req, opt), (k, "parser", sorted(req), sorted(opt), "schema", documented[k])
    # every choice list the parser offers is the one documented
    n = 0
    for t in TABLES:
        for key in t.keys:
            got = choices.get((t.path, None if key.name == t.selector else t.variant, key.name))
            if got is not None and key.name != "table":  # tabulated quenching: the file's tables
                assert set(got) == set(key.choices), (t.path, t.variant, key.name, got, key.choices)
                n += 1
    assert n >= 20  # selectors, observable, smearing, spacing, presets, capture, high, form factor, loader ...
    from cevnsjax.physics.xsec import CHARGE_RADIUS_CORRECTIONS, COUPLING_PRESETS
    xs = {k.name: k for k in next(t for t in TABLES if t.path == "cross_section").keys}
    assert set(xs["couplings"].choices) == set(COUPLING_PRESETS)
    assert set(xs["charge_radius_correction"].choices) == set(CHARGE_RADIUS_CORRECTIONS)
    assert set(next(k for t in TABLES if t.path == "data" for k in t.keys if k.name == "loader").choices) == set(
        spec_mod.DATA_LOADERS)


def test_schema_defaults_are_valid_choices_and_documented():
    for t in TABLES:
        names = [k.name for k in t.keys]
        assert len(names) == len(set(names)), t.title
        for k in t.keys:
            assert k.doc and k.type, (t.title, k.name)
            if k.choices and isinstance(k.default, str) and not k.required and " " not in k.default \
                    and k.default not in ("none",):
                assert k.default in k.choices, (t.title, k.name, k.default)


def test_docs_spec_md_is_generated_from_the_schema():
    text = (ROOT / "docs" / "spec.md").read_text()
    assert text == markdown(), "docs/spec.md is stale: run `cevnsjax init --doc docs/spec.md --overwrite`"
    for t in TABLES:
        assert f"## `{t.title}`" in text
        for k in t.keys:
            assert f"| `{k.name}` |" in text


def test_init_writes_a_runnable_template(tmp_path, capsys):
    path = tmp_path / "exp.toml"
    assert main(["init", str(path)]) == 0
    assert path.read_text() == TEMPLATE
    assert main(["init", str(path)]) == 2 and "--overwrite" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("error", FluxValidityWarning)
        assert main(["predict", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["experiment"] == "my_reactor_ge" and len(out["total"]) == 40 and out["totals"]["signal"] > 0
    # the flat background: 10 counts/(keVee kg day) x 0.02 keVee x 365 kg day per bin
    assert out["background"][0] == pytest.approx(10.0 * 0.02 * 365.0, rel=1e-12)
    assert main(["init", str(tmp_path / "spec.md"), "--doc"]) == 0
    assert (tmp_path / "spec.md").read_text() == markdown()


def test_params_lists_free_parameters_with_defaults_and_priors(tmp_path, capsys):
    path = tmp_path / "exp.toml"
    path.write_text(TEMPLATE)
    assert main(["params", str(path), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["k"]["default"] == 0.157 and rows["k"]["prior"] == ["normal", 0.157, 0.01]
    assert rows["bkg.flat.rate"]["default"] == 10.0 and rows["bkg.flat.rate"]["prior"] == ["uniform", 0.0, 30.0]
    assert rows["sin2_theta_w"]["prior"] is None and "flux.U235" in rows and "resolution.fano" in rows
    assert main(["params", str(path)]) == 0
    assert re.search(r"^k\s+0\.157\s+\['normal', 0\.157, 0\.01\]$", capsys.readouterr().out, re.M)
    assert main(["params", str(tmp_path / "missing.toml")]) == 2


def _subparsers(p):
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            return a.choices
    return {}


def test_every_cli_option_has_help_and_shows_its_default():
    parser = build_parser()
    subs = _subparsers(parser)
    assert {"init", "params", "predict", "fit", "scan"} <= set(subs)
    for name, sp in subs.items():
        text = " ".join(sp.format_help().split())
        for a in sp._actions:
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction)):
                continue
            assert a.help, f"cevnsjax {name} {a.option_strings or a.dest}: no help text"
            d = a.default
            if a.option_strings and not (d is None or d is False or d == [] or d is argparse.SUPPRESS):
                h = " ".join(a.help.split())
                shown = f"{h} (default: {d})" in text or ("default" in h and str(d) in h)
                assert shown, f"cevnsjax {name} {a.option_strings}: default {d!r} not shown"
