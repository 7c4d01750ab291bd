"""The public API is pinned: adding is deliberate, removing breaks users (pyhf's habit)."""

import subprocess
import sys

import cevnsjax

EXPECTED = {
    "enable_x64", "x64_enabled", "PhysicsParams", "CrossSectionModel", "TreeLevel", "PDGRadiative", "FixedCouplings",
    "COUPLING_PRESETS", "ZPrimeCharges", "UNIVERSAL", "B_MINUS_L", "B_MINUS_LE_3LMU_PLUS_LTAU", "Helm",
    "KleinNystrand", "SymmetrizedFermi", "NoFormFactor", "Isotope", "Target", "Source", "CompositeSource", "PionDAR",
    "BinnedFlux", "RateKernels", "prepare", "node_rates", "recoil_spectrum", "binned_rate", "expected_counts",
    "differential_cross_section", "total_cross_section", "weak_charge", "Reactor", "TabulatedFlux",
}


def test_public_api_is_pinned():
    assert set(cevnsjax.__all__) >= EXPECTED
    for name in cevnsjax.__all__:
        assert hasattr(cevnsjax, name), name


def test_import_does_not_enable_x64_or_import_arviz():
    code = ("import jax, sys, cevnsjax, cevnsjax.rates, cevnsjax.experiment, cevnsjax.io.spec; "
            "assert not jax.config.jax_enable_x64, 'x64 switched on by import'; "
            "assert 'arviz' not in sys.modules, 'arviz imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
