"""COHERENT CsI[Na] full data set (Akimov et al., PRL 129, 081801 (2022); arXiv:2110.07730).

Unbinned beam-on coincidence (C) and anti-coincidence (AC) events (energy [PE], recoil time
t_rec [us]); beam-related-neutron (BRN) and neutrino-induced-neutron (NIN) PDFs in PE (1-PE bins,
each summing to 1 over PE < 60) and in t_rec (10-ns bins, shape only); the energy-efficiency and
scintillation-response coefficients. Region of interest: 0 <= PE < 60, 0 <= t_rec < 6 us.
The release's ``snsFlux2D.root`` is not in the public copy and is not read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cevnsjax.io.tables import Table, dataset_dir, read_table, require_file, uniform_edges

__all__ = ["CsI2021", "load_coherent_csi_2021", "ROI_PE_MAX", "ROI_T_MAX_US"]

NAME = "coherent_csi_2021"
#: analysis region of interest: 0 <= PE < 60, 0 <= t_rec < 6 us
ROI_PE_MAX = 60.0
ROI_T_MAX_US = 6.0


@dataclass(frozen=True)
class CsI2021:
    """The CsI[Na] 2021 release.

    ``eff_coefficients[i] = (a, b [1/PE], c [PE], d)`` of eff(x) = a / (1 + exp(-b (x - c))) + d,
    x in PE; row 0 is nominal. ``scint_coefficients[i] = (a, b, c, d)`` of
    Eee[MeVee] = a x + b x^2 + c x^3 + d x^4, x in MeVnr; row 0 is nominal. ``*_labels`` are the
    comment lines of the file above each row, verbatim (the efficiency file labels both
    systematic rows "+1 sigma").
    """

    c_pe: np.ndarray  # (5142,) reconstructed energy [PE]
    c_t_us: np.ndarray  # (5142,) recoil time t_rec [us]
    ac_pe: np.ndarray  # (4890,)
    ac_t_us: np.ndarray  # (4890,)
    pdf_pe_centres: np.ndarray  # (250,) [PE], 0.5 ... 249.5
    brn_pe_pdf: np.ndarray  # (250,) probability per 1-PE bin (sums to 1 over PE < 60)
    nin_pe_pdf: np.ndarray
    pdf_t_centres_us: np.ndarray  # (650,) [us], -0.245 ... 6.245
    brn_t_shape: np.ndarray  # (650,) per 10-ns bin, arbitrary normalisation
    nin_t_shape: np.ndarray
    eff_coefficients: np.ndarray  # (3, 4)
    eff_labels: tuple[str, ...]
    scint_coefficients: np.ndarray  # (5, 4)
    scint_labels: tuple[str, ...]
    folder: Path

    @staticmethod
    def roi_mask(pe: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        """Events inside 0 <= PE < 60 and 0 <= t_rec < 6 us."""
        return (pe >= 0) & (pe < ROI_PE_MAX) & (t_us >= 0) & (t_us < ROI_T_MAX_US)

    def roi_counts(self) -> tuple[int, int]:
        """(C, AC) beam-on events in the region of interest."""
        return (int(self.roi_mask(self.c_pe, self.c_t_us).sum()),
                int(self.roi_mask(self.ac_pe, self.ac_t_us).sum()))


def _events(folder: Path, name: str) -> Table:
    return read_table(require_file(folder, name), ("pe", "t_us"), nonnegative=("pe",))


def _pdfs(folder: Path, brn: str, nin: str, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = read_table(require_file(folder, brn), (axis, "value"), nonnegative=("value",))
    n = read_table(require_file(folder, nin), (axis, "value"), nonnegative=("value",))
    uniform_edges(b.col(axis), str(b.path), axis)
    if b.col(axis).shape != n.col(axis).shape or not np.allclose(b.col(axis), n.col(axis)):
        raise ValueError(f"{n.path}: bin centres differ from {b.path}; restore the released file")
    return b.col(axis), b.col("value"), n.col("value")


def load_coherent_csi_2021(path) -> CsI2021:
    """Load the CsI 2021 release from the data folder, the ``coherent_csi_2021/`` folder, or a file in it."""
    folder = dataset_dir(path, NAME, "dataBeamOnC.txt")
    c = _events(folder, "dataBeamOnC.txt")
    ac = _events(folder, "dataBeamOnAC.txt")
    pe, brn_pe, nin_pe = _pdfs(folder, "brnPE.txt", "ninPE.txt", "pe")
    tt, brn_t, nin_t = _pdfs(folder, "brnTrec.txt", "ninTrec.txt", "t_us")
    eff = read_table(require_file(folder, "effCoefficients.txt"), ("a", "b", "c", "d"))
    scint = read_table(require_file(folder, "scintRespCoefficients.txt"), ("a", "b", "c", "d"))
    return CsI2021(
        c_pe=c.col("pe"),
        c_t_us=c.col("t_us"),
        ac_pe=ac.col("pe"),
        ac_t_us=ac.col("t_us"),
        pdf_pe_centres=pe,
        brn_pe_pdf=brn_pe,
        nin_pe_pdf=nin_pe,
        pdf_t_centres_us=tt,
        brn_t_shape=brn_t,
        nin_t_shape=nin_t,
        eff_coefficients=eff.data,
        eff_labels=eff.labels,
        scint_coefficients=scint.data,
        scint_labels=scint.labels,
        folder=folder,
    )
