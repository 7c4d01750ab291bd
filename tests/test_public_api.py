"""The public API is pinned: adding is deliberate, removing breaks users (pyhf's habit)."""

import subprocess
import sys

import cevnsjax

# The exact public namespace, in the order of ``cevnsjax.__all__``. Adding a name is deliberate (add it here and to
# CHANGELOG.md); removing one breaks users (deprecate first).
EXPECTED = [
    "enable_x64", "x64_enabled",
    "PhysicsParams", "CrossSectionModel",
    "TreeLevel", "PDGRadiative", "FixedCouplings", "COUPLING_PRESETS", "ZPrimeCharges", "UNIVERSAL",
    "B_MINUS_L", "B_MINUS_LE_3LMU_PLUS_LTAU",
    "Helm", "KleinNystrand", "SymmetrizedFermi", "NoFormFactor",
    "Isotope", "Target",
    "Source", "CompositeSource", "ScaledSource", "PionDAR", "BinnedFlux", "Reactor", "TabulatedFlux",
    "RateKernels", "prepare", "node_rates", "recoil_spectrum", "binned_rate", "expected_counts",
    "differential_cross_section", "total_cross_section", "weak_charge",
    "Experiment", "ExperimentParams", "Observable", "Observed", "Prediction", "RecoilGrid", "predict",
    "SpecError", "experiment_from_spec", "load_preset", "load_spec", "preset_names",
    "Uniform", "LogUniform", "Normal", "TruncatedNormal", "HalfNormal", "LogNormal", "run_nuts",
    "Analysis", "JointModel", "minimize", "profile", "compare", "delta_chi2", "p_value", "significance",
    "likelihood_ratio_test", "FitResult", "ProfileResult", "PosteriorResult", "load_result",
]


def test_public_api_is_pinned():
    assert list(cevnsjax.__all__) == EXPECTED
    for name in cevnsjax.__all__:
        assert hasattr(cevnsjax, name), name
    public = {n for n in vars(cevnsjax) if not n.startswith("_")}
    subpackages = {"physics", "sources", "detector", "stats", "io", "analyses", "rates", "experiment", "results",
                   "plots", "names", "reporting", "config", "cli", "demo"}
    stray = public - set(EXPECTED) - subpackages
    assert not stray, f"public names outside __all__: {sorted(stray)} (add them to __all__ and here, or make them private)"


def test_import_does_not_enable_x64_or_import_arviz():
    code = ("import jax, sys, cevnsjax, cevnsjax.rates, cevnsjax.experiment, cevnsjax.io.spec; "
            "assert not jax.config.jax_enable_x64, 'x64 switched on by import'; "
            "assert 'arviz' not in sys.modules, 'arviz imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
