"""Bad inputs as a new user would give them (specs, data files, CLI flags): every one ends in ONE line
``error: ...`` on stderr naming the field or flag, exit code 2, no traceback, and nothing computed.

The CLI runs in-process (``cevnsjax.cli.main``); each case states the words its message must hold.
"""

from pathlib import Path

import numpy as np
import pytest

from cevnsjax.cli import main

PRESET = Path(__file__).parents[1] / "cevnsjax" / "io" / "presets" / "conus.toml"


def _expect_one_line_error(argv, capsys, *words):
    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    err = cap.err
    assert rc == 2, (rc, err, cap.out[-500:])
    assert "Traceback" not in err and "Traceback" not in cap.out
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for w in words:
        assert w.lower() in err.lower(), (w, err)
    return err


# ------------------------------------------------------------------------------------------ specs
# (name, [(old, new) replacements in the CONUS preset], words the message must hold)
SPEC_CASES = [
    ("not_toml", [("[target]", "[target")], ["not valid TOML"]),
    ("missing_table", [("[exposure]\nlive_days = 66.68", "")], ["exposure"]),
    ("typo_key", [("mass_kg = 3.73", "mas_kg = 3.73")], ["mas_kg"]),
    ("mass_negative", [("mass_kg = 3.73", "mass_kg = -1.0")], ["target.mass_kg", "-1.0"]),
    ("mass_string", [("mass_kg = 3.73", 'mass_kg = "heavy"')], ["target.mass_kg", "number"]),
    ("mass_nan", [("mass_kg = 3.73", "mass_kg = nan")], ["target.mass_kg", "nan"]),
    ("mass_overflow", [("mass_kg = 3.73", "mass_kg = 1e300")], ["target.mass_kg", "1e+300"]),
    ("days_overflow", [("live_days = 66.68", "live_days = 1e305")], ["exposure.live_days"]),
    ("days_zero", [("live_days = 66.68", "live_days = 0")], ["exposure.live_days", "> 0"]),
    ("days_inf", [("live_days = 66.68", "live_days = inf")], ["exposure.live_days"]),
    ("unknown_element", [('formula = "Ge"', 'formula = "Xq"')], ["target.formula", "Xq"]),
    ("quenching_k_zero", [("\nk = 0.162", "\nk = 0.0")], ["detector.quenching.k", "0.0"]),
    ("quenching_k_negative", [("\nk = 0.162", "\nk = -0.2")], ["detector.quenching.k", "-0.2"]),
    ("quenching_k_string", [("\nk = 0.162", '\nk = "low"')], ["detector.quenching.k"]),
    ("quenching_model", [('model = "lindhard"', 'model = "lindhart"')], ["detector.quenching.model", "lindhard"]),
    ("efficiency_above_one", [("[detector.resolution]", '[detector.efficiency]\nmodel = "constant"\nvalue = 1.5\n\n'
                                                         "[detector.resolution]")], ["detector.efficiency.value", "1.5"]),
    ("efficiency_missing_file", [("[detector.resolution]", '[detector.efficiency]\nmodel = "tabulated"\n'
                                  'path = "no_such_eff.txt"\n\n[detector.resolution]')], ["no_such_eff.txt"]),
    ("background_nan", [("rate = 10.0", "rate = nan")], ["background[0].rate", "nan"]),
    ("background_negative", [("rate = 10.0", "rate = -3.0")], ["background[0].rate", "-3.0"]),
    ("background_type", [('type = "flat"', 'type = "flatt"')], ["background[0].type", "flat"]),
    ("bins_zero", [("n = 40", "n = 0")], ["bins.n"]),
    ("bins_reversed", [("start = 0.21, stop = 1.01", "start = 1.01, stop = 0.21")], ["stop"]),
    ("bins_and_edges", [("bins = {", "edges = [0.3, 0.5]\nbins = {")], ["exactly one of"]),
    ("edges_not_increasing", [("bins = { start = 0.21, stop = 1.01, n = 40 }", "edges = [0.3, 0.5, 0.4]")],
     ["edges", "increasing"]),
    ("grid_reversed", [("min_keV = 0.3, max_keV = 3.0", "min_keV = 3.0, max_keV = 0.3")], ["recoil_grid"]),
    ("grid_too_short", [("max_keV = 3.0", "max_keV = 1.0")], ["recoil_grid", "max_keV"]),
    ("grid_nodes_zero", [("nodes_per_bin = 2", "nodes_per_bin = 0")], ["nodes_per_bin"]),
    ("observable_unknown", [('observable = "E_ee_keV"', 'observable = "keVee"')], ["detector.observable"]),
    ("observable_vs_resolution", [('observable = "E_ee_keV"', 'observable = "PE"')], ["resolution", "PE"]),
    ("resolution_negative", [("sigma_noise_keV = 0.030", "sigma_noise_keV = -0.03")], ["sigma_noise_keV"]),
    ("resolution_model", [('model = "ge"', 'model = "germanium"')], ["detector.resolution.model"]),
    ("source_type", [('type = "reactor"', 'type = "sun"')], ["source.type", "reactor"]),
    ("source_preset", [('preset = "conus"', 'preset = "konus"')], ["source.preset"]),
    ("source_power", [('preset = "conus"', 'preset = "conus"\npower_GW = -3.9')], ["source.power_GW"]),
    ("form_factor", [("[source]", '[cross_section]\nform_factor = "helmm"\n\n[source]')], ["form_factor", "helm"]),
    ("data_loader", [("[[background]]", '[data]\nloader = "nope"\npath = "x"\n\n[[background]]')], ["data.loader"]),
    ("prior_kind", [("[[background]]", '[fit.priors]\nsignal_scale = ["uniformm", 0, 2]\n\n[[background]]')],
     ["uniformm"]),
    ("prior_bounds", [("[[background]]", '[fit.priors]\nsignal_scale = ["uniform", 2, 0]\n\n[[background]]')],
     ["signal_scale"]),
    ("prior_name", [("[[background]]", '[fit.priors]\nsignal_scal = ["uniform", 0, 2]\n\n[[background]]')],
     ["signal_scal"]),
    ("smearing_step", [("[detector.quenching]", "smearing_step = 0.01\n\n[detector.quenching]")], ["smearing_step"]),
    ("efficiency_subbins", [("[detector.quenching]", "efficiency_subbins = 0\n\n[detector.quenching]")],
     ["efficiency_subbins"]),
    ("quenching_not_table", [('[detector.quenching]\nmodel = "lindhard"\nk = 0.162', "quenching = 0.16")],
     ["detector.quenching", "must be a table"]),
    ("background_single_brackets", [("[[background]]", "[background]")], ["[[background]]"]),
    ("bins_start_text", [("start = 0.21", 'start = "low"')], ["detector.bins.start", "low"]),
    ("edges_text", [("bins = { start = 0.21, stop = 1.01, n = 40 }", 'edges = ["a", "b"]')], ["detector.edges"]),
    ("grid_bins_text", [("n_bins = 120", 'n_bins = "many"')], ["recoil_grid.n_bins", "many"]),
    ("constant_quenching_above_one", [('model = "lindhard"\nk = 0.162', 'model = "constant"\nvalue = 2.0')],
     ["detector.quenching.value", "2.0"]),
    ("polynomial_text", [('model = "lindhard"\nk = 0.162', 'model = "polynomial"\ncoefficients = "x"')],
     ["detector.quenching.coefficients"]),
    ("template_counts_negative", [("[[background]]", '[[background]]\ntype = "template"\nname = "t"\n'
                                   "counts = [-1.0]\n\n[[background]]")], ["background[0].counts"]),
]


@pytest.mark.parametrize("name, edits, words", SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_bad_spec(tmp_path, capsys, name, edits, words):
    text = PRESET.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    cmd = "fit" if name.startswith("prior") else "predict"
    argv = [cmd, str(spec)] + (["--out", str(tmp_path / "o"), "--method", "mle"] if cmd == "fit" else [])
    _expect_one_line_error(argv, capsys, *words)
    assert not (tmp_path / "o").exists()  # a refused run leaves no output folder behind


# ------------------------------------------------------------------------------------------ data files
def _spec_with_table(tmp_path, table_text):
    (tmp_path / "eff.txt").write_text(table_text)
    text = PRESET.read_text().replace("[detector.resolution]", '[detector.efficiency]\nmodel = "tabulated"\n'
                                      'path = "eff.txt"\n\n[detector.resolution]')
    (tmp_path / "spec.toml").write_text(text)
    return str(tmp_path / "spec.toml")


DATA_CASES = [
    ("eff_above_one", "0 0.5\n1 1.5\n", ["eff.txt", "[0, 1]"]),
    ("eff_not_increasing", "0 0.5\n1 0.6\n0.5 0.7\n", ["eff.txt", "increasing"]),
    ("eff_garbage", "this is not a table\n", ["eff.txt"]),
    ("eff_empty", "", ["eff.txt"]),
    ("eff_nan", "0 0.5\n1 nan\n", ["eff.txt"]),
    ("eff_binary", "\x00\x01\x02\x03", ["eff.txt"]),
]


@pytest.mark.parametrize("name, table, words", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data_file(tmp_path, capsys, name, table, words):
    _expect_one_line_error(["predict", _spec_with_table(tmp_path, table)], capsys, *words)


def test_data_folder_missing_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CEVNSJAX_DATA", str(tmp_path))  # an empty data folder
    _expect_one_line_error(["predict", "dresden_ii"], capsys, "not found", str(tmp_path))


# ------------------------------------------------------------------------------------------ CLI flags
SCAN = ["scan", "conus", "--asimov", "--param", "signal_scale=lin:0.5:1.5:3", "--no-progress"]
FIT = ["fit", "conus", "--asimov"]

FLAG_CASES = [
    ("chunk_size_zero", SCAN + ["--chunk-size", "0"], ["--chunk-size", "0"]),
    ("chunk_size_negative", SCAN + ["--chunk-size", "-4"], ["--chunk-size", "-4"]),
    ("chunk_size_text", SCAN + ["--chunk-size", "many"], ["--chunk-size"]),
    ("fix_no_value", SCAN + ["--fix", "k"], ["--fix", "NAME=VALUE"]),
    ("fix_text_value", SCAN + ["--fix", "k=abc"], ["--fix", "abc"]),
    ("fix_nan_value", SCAN + ["--fix", "k=nan"], ["--fix", "nan"]),
    ("fix_unknown_name", SCAN + ["--fix", "kk=0.2"], ["kk"]),
    ("fix_twice_two_names", SCAN + ["--fix", "k=0.2", "--fix", "quenching.k=0.3"], ["quenching.k", "k"]),
    ("param_format", ["scan", "conus", "--param", "signal_scale=0.5:1.5:3"], ["signal_scale"]),
    ("param_unknown", ["scan", "conus", "--param", "signal_scal=lin:0.5:1.5:3"], ["signal_scal"]),
    ("param_log_zero", ["scan", "conus", "--param", "signal_scale=log:0:1:3"], ["signal_scale"]),
    ("param_points_zero", ["scan", "conus", "--param", "signal_scale=lin:0.5:1.5:0"], ["signal_scale"]),
    ("profile_without_prior", SCAN + ["--profile", "bkg.flat.rate"], ["--profile", "bkg.flat.rate"]),
    ("prior_format", FIT + ["--prior", "k"], ["--prior", "NAME=KIND"]),
    ("prior_numbers", FIT + ["--prior", "k=uniform:a:b"], ["--prior", "numbers"]),
    ("prior_kind", FIT + ["--prior", "k=uniformm:0:1"], ["uniformm"]),
    ("prior_unknown_name", FIT + ["--prior", "sin2thetaw=uniform:0:1"], ["sin2thetaw"]),
    ("num_samples_zero", FIT + ["--num-samples", "0"], ["--num-samples", "0"]),
    ("num_chains_zero", FIT + ["--num-chains", "0"], ["--num-chains", "0"]),
    ("num_warmup_negative", FIT + ["--num-warmup", "-1"], ["--num-warmup", "-1"]),
    ("method_unknown", FIT + ["--method", "hmc"], ["--method", "hmc"]),
    ("demo_points_zero", ["demo", "--points", "0"], ["--points", "0"]),
    ("demo_samples_zero", ["demo", "--num-samples", "0"], ["--num-samples", "0"]),
    ("demo_chains_zero", ["demo", "--num-chains", "-2"], ["--num-chains", "-2"]),
    ("unfold_toys_zero", ["unfold", "1", "--toys", "0"], ["--toys", "0"]),
    ("unfold_betas_zero", ["unfold", "1", "--betas", "0"], ["--betas", "0"]),
    ("unfold_beta_text", ["unfold", "1", "--beta", "large"], ["--beta", "large"]),
    ("unfold_beta_negative", ["unfold", "1", "--beta", "-1"], ["--beta", "-1"]),
    ("unfold_scenario", ["unfold", "9"], ["scenario", "9"]),
    ("unknown_preset", ["predict", "conuss"], ["conuss", "conus"]),
    ("spec_is_folder", ["predict", "."], ["."]),
    ("unknown_command", ["fitt", "conus"], ["fitt"]),
    ("unknown_flag", ["predict", "conus", "--jsn"], ["--jsn"]),
]


@pytest.mark.parametrize("name, argv, words", FLAG_CASES, ids=[c[0] for c in FLAG_CASES])
def test_bad_flag(tmp_path, capsys, name, argv, words):
    out = tmp_path / "o"
    if argv[0] in ("scan", "fit", "demo", "unfold"):
        argv = argv + ["--out", str(out)]
    _expect_one_line_error(argv, capsys, *words)
    assert not out.exists()


def test_missing_out_is_one_line(capsys):
    _expect_one_line_error(["fit", "conus"], capsys, "--out")


def test_out_is_a_file_or_unwritable(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    _expect_one_line_error(["fit", "conus", "--out", str(f)], capsys, "--out", "is a file")
    _expect_one_line_error(["fit", "conus", "--out", str(f / "sub")], capsys, "--out", "cannot be created")


def test_out_holding_another_run_is_refused_before_computing(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "results.txt").write_text("someone's results")
    # unfold would compute for minutes before writing: the folder is refused first
    _expect_one_line_error(["unfold", "1", "--out", str(out)], capsys, "--out", "results.txt")
    assert (out / "results.txt").read_text() == "someone's results"


def test_debug_shows_the_traceback(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(PRESET.read_text().replace("mass_kg = 3.73", "mass_kg = -1.0"))
    with pytest.raises(ValueError, match="target.mass_kg"):
        main(["predict", str(spec), "--debug"])
    assert main(["predict", str(spec)]) == 2


def test_predict_json_never_holds_nan(tmp_path, capsys):
    import json

    assert main(["predict", "conus", "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["totals"]["signal"] > 0


# ------------------------------------------------------------------------------------------ NUTS
def _bounded_model(obs=None):
    import numpyro
    import numpyro.distributions as dist

    x = numpyro.sample("x", dist.Uniform(0.0, 1.0))
    numpyro.sample("y", dist.Normal(x, 0.3), obs=obs)


def test_nuts_starts_off_a_prior_bound():
    import jax.numpy as jnp

    from cevnsjax.stats.infer import interior_init, run_nuts

    obs = jnp.asarray([0.05, 0.0, 0.1])
    moved = interior_init(_bounded_model, {"x": 0.0}, obs=obs)
    assert float(moved["x"]) == pytest.approx(1e-3)  # 1e-3 of the interval width inside
    assert float(interior_init(_bounded_model, {"x": 1.0}, obs=obs)["x"]) == pytest.approx(1 - 1e-3)
    assert float(interior_init(_bounded_model, {"x": 0.4}, obs=obs)["x"]) == 0.4  # inside: unchanged
    # an MLE on the bound (x = 0) as the start: NUTS used to stop with "Cannot find valid initial parameters"
    res = run_nuts(_bounded_model, obs=obs, num_warmup=300, num_samples=500, num_chains=2, progress_bar=False,
                   init_values={"x": 0.0}, num_prior_samples=0, posterior_predictive=False)
    assert res.attrs["converged"] is True
    x = np.asarray(res.groups["posterior"]["x"])
    assert np.all((x > 0) & (x < 1)) and np.isfinite(x).all()


def test_unconverged_nuts_warns_naming_the_test():
    import jax.numpy as jnp

    from cevnsjax.stats.infer import ConvergenceWarning, convergence_report, run_nuts

    with pytest.warns(ConvergenceWarning, match=r"ess_bulk\[x\] = \d+ \(need > 100\)"):
        res = run_nuts(_bounded_model, obs=jnp.asarray([0.3]), num_warmup=5, num_samples=8, num_chains=1,
                       progress_bar=False, num_prior_samples=0, posterior_predictive=False)
    rep = convergence_report(res)
    assert not rep["converged"] and rep["failures"] and res.attrs["converged"] is False
    assert any(f.startswith("ess_bulk[x]") for f in rep["failures"]) and rep["ess_bulk_min"]["x"] <= 100


def test_fit_strict_fails_an_unconverged_nuts(tmp_path, capsys):
    import json

    args = ["fit", "conus", "--out", str(tmp_path), "--asimov", "--num-samples", "10", "--num-warmup", "10",
            "--num-chains", "1", "--prior", "signal_scale=uniform:0:3", "--prior", "bkg.flat.rate=uniform:0:30"]
    assert main(args + ["--strict"]) == 3
    err = capsys.readouterr().err
    assert "warning: NUTS did not converge: " in err and "ess_bulk[" in err and "Traceback" not in err
    rep = json.loads((tmp_path / "fit.json").read_text())
    assert rep["nuts"]["converged"] is False and any("ess_bulk" in f for f in rep["nuts"]["failures"])


# ------------------------------------------------------------------------------------------ objects
def test_model_objects_refuse_implausible_numbers_but_not_tracers():
    import jax

    from cevnsjax.detector.backgrounds import Flat
    from cevnsjax.detector.quenching import Lindhard, ModifiedLindhard
    from cevnsjax.detector.response import ConstantEfficiency

    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="k=.* must be finite and > 0"):
            Lindhard(32.0, 72.63, k=bad)
        with pytest.raises(ValueError, match="k=.* must be finite and > 0"):
            ModifiedLindhard(32.0, 72.63, k=bad)
    with pytest.raises(ValueError, match=r"value=1.5 must lie in \(0, 1\]"):
        ConstantEfficiency(1.5)
    with pytest.raises(ValueError, match="rate=nan must be finite and >= 0"):
        Flat(float("nan"))
    with pytest.raises(ValueError, match="rate=-2.0"):
        Flat(-2.0)
    # under jit and grad the fields are tracers: no check there (a scan may cross any value)
    q = jax.jit(lambda k: Lindhard(32.0, 72.63, k=k).Q(1.0))(0.157)
    np.testing.assert_allclose(float(q), 0.17099, rtol=1e-4)  # the docstring's Ge value
    assert np.isfinite(float(jax.grad(lambda r: Flat(r).counts(np.array([0.0, 1.0]), 2.0)[0])(1.0)))


def test_a_parameter_under_two_names_is_an_error_also_under_jit():
    import jax

    from cevnsjax.experiment import apply, check_names
    from cevnsjax.io.spec import load_preset

    exp = load_preset("conus", with_data=False)
    theta = exp.defaults
    with pytest.raises(ValueError, match="'quenching.k' is given twice, as 'k' and 'quenching.k'"):
        check_names(["k", "quenching.k"], theta, (), exp)
    with pytest.raises(ValueError, match="given twice"):
        jax.jit(lambda a, b: apply(theta, {"k": a, "quenching.k": b}).quenching.k)(0.1, 0.2)
    assert float(jax.jit(lambda a: apply(theta, {"k": a}).quenching.k)(0.2)) == pytest.approx(0.2)
