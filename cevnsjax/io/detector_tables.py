"""Loaders for detector tables: quenching-factor tables and measurements, efficiency tables and
coefficients, arrival-time PDFs (host side; each takes a path, never ships data).

The detector models they build live in :mod:`cevnsjax.detector` (quenching, response); the numeric
tables are read by :func:`cevnsjax.io.tables.read_table` (``file:line`` errors).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cevnsjax.detector.quenching import PolynomialLightYield, TabulatedQuenching
from cevnsjax.detector.response import ArrivalTimePDF, Coherent2021Efficiency, TabulatedEfficiency
from cevnsjax.io.tables import read_table

__all__ = ["load_dresden_ii_qf", "QFMeasurements", "load_coherent_csi_qf", "load_coherent_csi_2021_scintillation",
           "load_coherent_csi_2021_efficiency", "load_efficiency_table", "load_arrival_time_pdf"]


def load_dresden_ii_qf(path) -> dict[str, TabulatedQuenching]:
    """Dresden-II Ge quenching tables (QF_Fef_YBe.txt; Collar et al. PRD 103, 122003, arXiv:2102.10089).

    Columns: E_R [keVnr] 0-4.5 in 0.01 steps; Q "Fef" (iron filter); Q "YBe" (photo-neutron).
    Returns {"Fef": ..., "YBe": ...}; Fef Q(0) = 0.43610, Q(4.5 keV) = 0.20933.
    """
    t = read_table(path, ("E_R_keV", "Q_Fef", "Q_YBe")).data
    return {
        "Fef": TabulatedQuenching.from_arrays(t[:, 0], t[:, 1], source=f"{path} Fef"),
        "YBe": TabulatedQuenching.from_arrays(t[:, 0], t[:, 2], source=f"{path} YBe"),
    }


class QFMeasurements(NamedTuple):
    """Quenching-factor measurements sorted by E_R: energies [keVnr], Q, asymmetric errors (+hi, -lo)."""

    E_R_keV: np.ndarray
    E_R_err_hi: np.ndarray
    E_R_err_lo: np.ndarray
    Q: np.ndarray
    Q_err_hi: np.ndarray
    Q_err_lo: np.ndarray

    def to_quenching(self, scale: float = 1.0) -> TabulatedQuenching:
        """Piecewise-linear Q through the points (no fit; errors ignored)."""
        return TabulatedQuenching.from_arrays(self.E_R_keV, self.Q, scale, source="QF measurements")


def load_coherent_csi_qf(path) -> QFMeasurements:
    """COHERENT CsI[Na] QF data (arXiv:1708.01294 release): qfData_chicago.txt or qfData_tunl.txt.

    4 columns (Chicago): E_R, +-err [keVnr], Q, +-err. 6 columns (TUNL): E_R, err_hi, err_lo [keVnr],
    Q, err_hi, err_lo. Rows are sorted by E_R (the TUNL file is not).
    """
    t = read_table(path, ncols=(4, 6)).data
    if t.shape[1] == 4:
        E, dE, Q, dQ = t.T
        cols = (E, dE, dE, Q, dQ, dQ)
    else:
        cols = tuple(t.T)
    order = np.argsort(cols[0], kind="stable")
    return QFMeasurements(*(np.ascontiguousarray(c[order]) for c in cols))


_SCINT_NAMES = ("nominal", "syst0_plus", "syst0_minus", "syst1_plus", "syst1_minus")


def load_coherent_csi_2021_scintillation(path) -> dict[str, PolynomialLightYield]:
    """COHERENT CsI 2021 scintRespCoefficients.txt: 5 rows of (a, b, c, d), E_ee[MeVee] in x[MeVnr].

    Row order (from the file's comments): nominal; syst model 0 +1 sigma, -1 sigma; syst model 1 +1, -1.
    Keys: "nominal", "syst0_plus", "syst0_minus", "syst1_plus", "syst1_minus".
    """
    t = read_table(path, ("a", "b", "c", "d")).data
    if t.shape[0] != len(_SCINT_NAMES):
        raise ValueError(f"{path}: expected {len(_SCINT_NAMES)} coefficient rows (nominal + 4 systematic), got {t.shape[0]}")
    return {n: PolynomialLightYield(*map(float, row)) for n, row in zip(_SCINT_NAMES, t)}


_EFF2021_NAMES = ("nominal", "plus1sigma", "minus1sigma")


def load_coherent_csi_2021_efficiency(path, pe_max: float = 60.0) -> dict[str, Coherent2021Efficiency]:
    """effCoefficients.txt: 3 rows of (a, b, c, d): nominal, +1 sigma, -1 sigma.

    The file labels both systematic rows "+1 sigma"; the third (c = 11.88 PE, lower efficiency) is
    taken as -1 sigma. Keys: "nominal", "plus1sigma", "minus1sigma".
    """
    t = read_table(path, ("a", "b", "c", "d")).data
    if t.shape[0] != 3:
        raise ValueError(f"{path}: expected 3 coefficient rows (nominal, +1 sigma, -1 sigma), got {t.shape[0]}")
    return {n: Coherent2021Efficiency(*map(float, r), pe_max=pe_max) for n, r in zip(_EFF2021_NAMES, t)}


def load_efficiency_table(path, x_column: int = 0, eff_column: int = -1, below: float = 0.0) -> TabulatedEfficiency:
    """A whitespace/CSV efficiency table -> TabulatedEfficiency (x strictly increasing, 0 <= eps <= 1)."""
    t = read_table(path, ncols=range(2, 20)).data
    x, e = t[:, x_column], t[:, eff_column]
    if np.any(np.diff(x) <= 0):
        raise ValueError(f"{path}: column {x_column} must be strictly increasing")
    if np.any((e < 0) | (e > 1)):
        raise ValueError(f"{path}: efficiencies in column {eff_column} must lie in [0, 1]")
    return TabulatedEfficiency(x, e, below)


def load_arrival_time_pdf(path) -> ArrivalTimePDF:
    """COHERENT CsI 2017 arrivalTimePDF_*.txt: CSV (bin centre [us], probability per bin).

    Bins must be equally spaced; edges are centres +- width/2 (0-12 us in 0.5 us bins).
    """
    t = read_table(path, ("t_us", "probability")).data
    c, p = t[:, 0], t[:, 1]
    if c.size < 2:
        raise ValueError(f"{path}: need >= 2 time bins")
    w = np.diff(c)
    if np.any(w <= 0) or not np.allclose(w, w[0], rtol=1e-6):
        raise ValueError(f"{path}: time bin centres must be equally spaced and increasing")
    if np.any(p < 0):
        raise ValueError(f"{path}: probabilities must be >= 0")
    edges = np.concatenate([c - 0.5 * w[0], c[-1:] + 0.5 * w[0]])
    return ArrivalTimePDF(edges, p)
