"""COHERENT CsI[Na] 2017 data release (Science 357, 1123 (2017); arXiv:1804.09459).

Beam-on/off, coincidence (C) / anti-coincidence (AC) grids of counts in 2-PE x 0.5-us bins
(25 x 24 cells, PE 0-50, arrival time 0-12 us), the prompt-neutron PE distribution (1-PE bins,
counts per GWh), the arrival-time PDFs (probability per 0.5-us bin), the Chicago and TUNL CsI[Na]
quenching-factor measurements, and ``coherent_parameters.yaml``. Region of interest of the
release: 6 <= PE <= 30 and t <= 6 us (whole bins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cevnsjax.io.detector_tables import QFMeasurements, load_coherent_csi_qf
from cevnsjax.io.tables import (
    dataset_dir,
    read_table,
    read_yaml,
    require_file,
    to_grid,
    uniform_edges,
    yaml_number,
)

__all__ = [
    "CsI2017",
    "QFMeasurements",
    "load_coherent_csi_2017",
    "ROI_PE_MIN",
    "ROI_PE_MAX",
    "ROI_T_MAX_US",
]

NAME = "coherent_csi_2017"
PARAMS_FILE = "coherent_parameters.yaml"
#: region of interest of the 2017 analysis (bin edges): 6 <= PE <= 30, 0 <= t <= 6 us
ROI_PE_MIN = 6.0
ROI_PE_MAX = 30.0
ROI_T_MAX_US = 6.0


@dataclass(frozen=True)
class CsI2017:
    """The CsI[Na] 2017 release. Grids are ``[pe_bin, time_bin]`` integer counts, shape (25, 24)."""

    pe_centres: np.ndarray  # (25,) [PE], 1, 3, ..., 49
    pe_edges: np.ndarray  # (26,) [PE], 0 ... 50
    t_centres_us: np.ndarray  # (24,) [us], 0.25 ... 11.75
    t_edges_us: np.ndarray  # (25,) [us], 0 ... 12
    coincidence_on: np.ndarray
    anticoincidence_on: np.ndarray
    coincidence_off: np.ndarray
    anticoincidence_off: np.ndarray
    prompt_neutron_pe_centres: np.ndarray  # (50,) [PE], 1-PE bins 0.5 ... 49.5
    prompt_neutron_per_gwh: np.ndarray  # (50,) expected counts per 1-PE bin per GWh, before acceptance
    arrival_pdf_prompt_nu: np.ndarray  # (24,) probability per 0.5-us bin (nu_mu)
    arrival_pdf_delayed_nu: np.ndarray  # (24,) (nu_e + anti-nu_mu)
    arrival_pdf_prompt_neutron: np.ndarray  # (24,) beam-related neutrons
    qf_chicago: QFMeasurements
    qf_tunl: QFMeasurements
    parameters: Mapping  # the whole coherent_parameters.yaml
    exposure_gwh: float  # 7.47594
    distance_m: float  # 19.3
    qf: float  # 0.0878
    qf_err: float  # 0.0166
    light_yield_pe_per_kevee: float  # 13.348
    nu_per_proton_per_flavour: float  # 0.08
    acceptance_a: float  # eff(x) = a / (1 + exp(-k (x - x0))) * H(x - 5), x in PE
    acceptance_k_per_pe: float
    acceptance_x0_pe: float
    folder: Path

    def roi_mask(self) -> np.ndarray:
        """(25, 24) bool: cells inside 6 <= PE <= 30 and t <= 6 us."""
        pe = (self.pe_edges[:-1] >= ROI_PE_MIN) & (self.pe_edges[1:] <= ROI_PE_MAX)
        t = self.t_edges_us[1:] <= ROI_T_MAX_US
        return pe[:, None] & t[None, :]

    def roi_total(self, grid: np.ndarray) -> int:
        """Sum of ``grid`` over the region of interest."""
        return int(np.sum(np.where(self.roi_mask(), grid, 0)))


_GRID = ("pe", "t_us", "counts")


def _grid(folder: Path, name: str):
    t = read_table(require_file(folder, name), _GRID, counts=("counts",), nonnegative=("pe",))
    (pe, tt), grid = to_grid(t, ("pe", "t_us"), "counts", dtype=np.int64)
    return pe, tt, grid, t


def _pdf(folder: Path, name: str, t_ref: np.ndarray) -> np.ndarray:
    t = read_table(require_file(folder, name), ("t_us", "probability"), nonnegative=("probability",))
    if t.col("t_us").shape != t_ref.shape or not np.allclose(t.col("t_us"), t_ref, atol=1e-9):
        raise ValueError(f"{t.path}: time bin centres differ from the data grid's "
                         f"({t_ref[0]:g}..{t_ref[-1]:g} us, {t_ref.size} bins); restore the released file")
    return t.col("probability")


def load_coherent_csi_2017(path) -> CsI2017:
    """Load the CsI 2017 release from the data folder, the ``coherent_csi_2017/`` folder, or a file in it."""
    folder = dataset_dir(path, NAME, "data_coincidence_beamOn.txt")
    pe, tt, c_on, t0 = _grid(folder, "data_coincidence_beamOn.txt")
    grids = {"coincidence_on": c_on}
    for key, name in (
        ("anticoincidence_on", "data_anticoincidence_beamOn.txt"),
        ("coincidence_off", "data_coincidence_beamOff.txt"),
        ("anticoincidence_off", "data_anticoincidence_beamOff.txt"),
    ):
        pe_i, t_i, g, ti = _grid(folder, name)
        if pe_i.shape != pe.shape or t_i.shape != tt.shape or not (
            np.allclose(pe_i, pe) and np.allclose(t_i, tt)
        ):
            raise ValueError(f"{ti.path}: PE/time binning differs from {t0.path}; restore the released file")
        grids[key] = g
    prompt = read_table(require_file(folder, "promptPDF.txt"), ("pe", "per_gwh"),
                        nonnegative=("pe", "per_gwh"))
    uniform_edges(prompt.col("pe"), str(prompt.path), "PE")
    ppath = require_file(folder, PARAMS_FILE)
    params = read_yaml(ppath)
    return CsI2017(
        pe_centres=pe,
        pe_edges=uniform_edges(pe, str(t0.path), "PE"),
        t_centres_us=tt,
        t_edges_us=uniform_edges(tt, str(t0.path), "time"),
        **grids,
        prompt_neutron_pe_centres=prompt.col("pe"),
        prompt_neutron_per_gwh=prompt.col("per_gwh"),
        arrival_pdf_prompt_nu=_pdf(folder, "arrivalTimePDF_promptNeutrinos.txt", tt),
        arrival_pdf_delayed_nu=_pdf(folder, "arrivalTimePDF_delayedNeutrinos.txt", tt),
        arrival_pdf_prompt_neutron=_pdf(folder, "arrivalTimePDF_promptNeutrons.txt", tt),
        qf_chicago=load_coherent_csi_qf(require_file(folder, "qfData_chicago.txt")),
        qf_tunl=load_coherent_csi_qf(require_file(folder, "qfData_tunl.txt")),
        parameters=params,
        exposure_gwh=yaml_number(params, ppath, "beamExposure"),
        distance_m=yaml_number(params, ppath, "distanceToTarget"),
        qf=yaml_number(params, ppath, "csiQF"),
        qf_err=yaml_number(params, ppath, "csiQF", "uncertainty"),
        light_yield_pe_per_kevee=yaml_number(params, ppath, "csiLightYield"),
        nu_per_proton_per_flavour=yaml_number(params, ppath, "neutrinosPerProton"),
        acceptance_a=yaml_number(params, ppath, "acceptanceEfficiency", name="a"),
        acceptance_k_per_pe=yaml_number(params, ppath, "acceptanceEfficiency", name="k"),
        acceptance_x0_pe=yaml_number(params, ppath, "acceptanceEfficiency", name="x_0"),
        folder=folder,
    )
