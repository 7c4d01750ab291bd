"""COHERENT CENNS-10 liquid argon, Analysis A (arXiv:2003.10630; release arXiv:2006.12659).

3-D histograms in reconstructed energy [keVee] x F90 x trigger time [us]
(12 x 8 x 10 cells: 0-120 keVee in 10-keVee bins, F90 0.5-0.9 in 0.05 bins, t -0.1-4.9 us in
0.5-us bins): the data (no background subtraction) and the collaboration's expected counts for
6.12 GWh (CEvNS, prompt BRN, delayed BRN, steady-state background), the +-1 sigma systematic
templates, the efficiency curve, the 1-D projections, the 1-D systematic multipliers and
``LArParametersAnlA.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from cevnsjax.io.tables import (
    dataset_dir,
    read_table,
    read_yaml,
    require_file,
    to_grid,
    uniform_edges,
    yaml_number,
)

__all__ = ["LAr2020", "Projection1D", "SystMultipliers1D", "load_coherent_lar_2020"]

NAME = "coherent_lar_2020"
PARAMS_FILE = "LArParametersAnlA.yaml"
_AXES = ("e_kevee", "f90", "t_us")
_PROJ = ("centre", "ss_sub_data", "stat_err", "cevns", "brn", "cevns_plus_brn", "syst_low", "syst_high")


@dataclass(frozen=True)
class Projection1D:
    """A released 1-D projection (bin centre, steady-state-subtracted data with its statistical
    error, best-fit CEvNS, BRN and their sum, systematic band low/high), all in events per bin."""

    centres: np.ndarray
    ss_sub_data: np.ndarray
    stat_err: np.ndarray
    cevns: np.ndarray
    brn: np.ndarray
    cevns_plus_brn: np.ndarray
    syst_low: np.ndarray
    syst_high: np.ndarray


@dataclass(frozen=True)
class SystMultipliers1D:
    """1-D fractional systematic multipliers: bin centre, low and high factor (dimensionless)."""

    centres: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class LAr2020:
    """The CENNS-10 Analysis-A release. 3-D arrays are indexed ``[energy, f90, time]``, shape (12, 8, 10).

    Templates are expected counts per cell for the 6.12-GWh exposure (CEvNS SM prediction 128,
    prompt BRN 497, delayed BRN 33, steady state 3152); ``syst_templates`` maps the file stem in
    ``SystErrors/`` (e.g. ``"cevnspdf+1sigF90"``) to its shifted template.
    """

    e_centres_kevee: np.ndarray  # (12,) 5 ... 115
    e_edges_kevee: np.ndarray  # (13,) 0 ... 120
    f90_centres: np.ndarray  # (8,) 0.525 ... 0.875
    f90_edges: np.ndarray  # (9,) 0.5 ... 0.9
    t_centres_us: np.ndarray  # (10,) 0.15 ... 4.65
    t_edges_us: np.ndarray  # (11,) -0.1 ... 4.9
    data_counts: np.ndarray  # int64 counts
    cevns: np.ndarray
    brn_prompt: np.ndarray
    brn_delayed: np.ndarray
    ss_bkg: np.ndarray
    syst_templates: Mapping
    eff_e_kevee: np.ndarray  # (80,) efficiency-curve bin centres [keVee]
    eff_e_kevnr: np.ndarray  # (80,) the same in keVnr
    efficiency: np.ndarray  # (80,) dimensionless, includes the F90 cuts
    proj_energy: Projection1D  # centres in keVee
    proj_f90: Projection1D  # centres in F90
    proj_time: Projection1D  # centres in us
    syst1d_energy: SystMultipliers1D
    syst1d_f90: SystMultipliers1D
    syst1d_time: SystMultipliers1D
    parameters: Mapping  # the whole LArParametersAnlA.yaml
    pot: float  # 13.8e22 protons on target (= 6.12 GWh)
    distance_m: float  # 27.5
    fiducial_mass_kg: float  # 24.4
    fiducial_mass_err_kg: float  # 0.61
    qf_a: float  # QF = a + b T[keVnr]
    qf_b_per_kevnr: float
    nu_per_proton_per_flavour: float  # 0.09
    resolution_a_sqrt_kevee: float  # sigma/E = a / sqrt(E[keVee])
    folder: Path


def _hist(folder: Path, rel: str, counts: bool, ref=None):
    t = read_table(require_file(folder, rel), (*_AXES, "value"),
                   **({"counts": ("value",)} if counts else {"nonnegative": ("value",)}))
    centres, grid = to_grid(t, _AXES, "value", dtype=np.int64 if counts else float)
    if ref is not None and not all(c.shape == r.shape and np.allclose(c, r) for c, r in zip(centres, ref)):
        raise ValueError(f"{t.path}: binning differs from datanobkgsub.txt; restore the released file")
    return centres, grid, t


def _proj(folder: Path, rel: str) -> Projection1D:
    t = read_table(require_file(folder, rel), _PROJ, header="auto")
    return Projection1D(*(t.col(c) for c in _PROJ))


def _syst1d(folder: Path, rel: str) -> SystMultipliers1D:
    t = read_table(require_file(folder, rel), ("centre", "low", "high"), nonnegative=("low", "high"))
    return SystMultipliers1D(t.col("centre"), t.col("low"), t.col("high"))


def load_coherent_lar_2020(path) -> LAr2020:
    """Load the LAr 2020 release from the data folder, the ``coherent_lar_2020/`` folder, or a file in it."""
    folder = dataset_dir(path, NAME, "datanobkgsub.txt")
    ref, data, t0 = _hist(folder, "datanobkgsub.txt", counts=True)
    edges = [uniform_edges(c, str(t0.path), a) for c, a in zip(ref, _AXES)]
    tmpl = {k: _hist(folder, f, False, ref)[1] for k, f in (
        ("cevns", "cevnspdf.txt"), ("brn_prompt", "brnpdf.txt"),
        ("brn_delayed", "delbrnpdf.txt"), ("ss_bkg", "bkgpdf.txt"))}
    sdir = folder / "SystErrors"
    if not sdir.is_dir():
        raise FileNotFoundError(f"{str(sdir)!r} not found; the published release has this folder")
    syst = {f.stem: _hist(folder, f"SystErrors/{f.name}", False, ref)[1] for f in sorted(sdir.glob("*.txt"))}
    eff = read_table(require_file(folder, "CENNS10AnlAEfficiency.txt"), ("e_kevee", "e_kevnr", "eff"),
                     nonnegative=("e_kevee", "e_kevnr", "eff"))
    ppath = require_file(folder, PARAMS_FILE)
    params = read_yaml(ppath)
    return LAr2020(
        e_centres_kevee=ref[0], e_edges_kevee=edges[0],
        f90_centres=ref[1], f90_edges=edges[1],
        t_centres_us=ref[2], t_edges_us=edges[2],
        data_counts=data,
        **tmpl,
        syst_templates=MappingProxyType(syst),
        eff_e_kevee=eff.col("e_kevee"), eff_e_kevnr=eff.col("e_kevnr"), efficiency=eff.col("eff"),
        proj_energy=_proj(folder, "OneDProjections/energydata1d.txt"),
        proj_f90=_proj(folder, "OneDProjections/f90data1d.txt"),
        proj_time=_proj(folder, "OneDProjections/timingdata1d.txt"),
        syst1d_energy=_syst1d(folder, "systerrors1denergy.txt"),
        syst1d_f90=_syst1d(folder, "systerrors1dpsd.txt"),
        syst1d_time=_syst1d(folder, "systerrors1dtime.txt"),
        parameters=params,
        pot=yaml_number(params, ppath, "beamExposure") * 1e22,
        distance_m=yaml_number(params, ppath, "distanceToTarget"),
        fiducial_mass_kg=yaml_number(params, ppath, "fiducialMass"),
        fiducial_mass_err_kg=yaml_number(params, ppath, "fiducialMass", "uncertainty"),
        qf_a=yaml_number(params, ppath, "larQF", name="a"),
        qf_b_per_kevnr=yaml_number(params, ppath, "larQF", name="b"),
        nu_per_proton_per_flavour=yaml_number(params, ppath, "neutrinosPerProton"),
        resolution_a_sqrt_kevee=yaml_number(params, ppath, "energyResolution", name="a"),
        folder=folder,
    )
