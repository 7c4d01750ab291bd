"""cevnsjax: differentiable coherent elastic neutrino-nucleus scattering (CEvNS) in JAX.

Quick start::

    import numpy as np, cevnsjax as cj
    cj.enable_x64()
    kernels = cj.prepare("CsI", cj.PionDAR.coherent_csi_2017(), E_R_keV=np.linspace(1, 50, 100))
    rate = cj.recoil_spectrum(cj.PhysicsParams(), kernels)   # events / (kg day keV)
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError, version as _version

from cevnsjax.config import enable_x64, x64_enabled
from cevnsjax.experiment import Experiment, ExperimentParams, Observable, Observed, Prediction, RecoilGrid, predict
from cevnsjax.io.spec import SpecError, experiment_from_spec, load_preset, load_spec, preset_names
from cevnsjax.physics.couplings import (
    B_MINUS_L,
    B_MINUS_LE_3LMU_PLUS_LTAU,
    COUPLING_PRESETS,
    UNIVERSAL,
    FixedCouplings,
    PDGRadiative,
    TreeLevel,
    ZPrimeCharges,
)
from cevnsjax.physics.formfactors import Helm, KleinNystrand, NoFormFactor, SymmetrizedFermi
from cevnsjax.physics.nuclei import Isotope, Target
from cevnsjax.physics.params import PhysicsParams
from cevnsjax.physics.xsec import CrossSectionModel, differential_cross_section, total_cross_section, weak_charge
from cevnsjax.rates import RateKernels, binned_rate, expected_counts, node_rates, prepare, recoil_spectrum
from cevnsjax.results import FitResult, PosteriorResult, ProfileResult, load as load_result
from cevnsjax.sources import BinnedFlux, CompositeSource, PionDAR, Reactor, ScaledSource, Source, TabulatedFlux
from cevnsjax.stats.fit import compare, delta_chi2, likelihood_ratio_test, minimize, p_value, profile, significance
from cevnsjax.stats.infer import HalfNormal, LogNormal, LogUniform, Normal, TruncatedNormal, Uniform, run_nuts
from cevnsjax.stats.model import Analysis, JointModel

try:
    __version__ = _version("cevnsjax")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.2.0"

__all__ = [
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
