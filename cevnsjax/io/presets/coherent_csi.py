"""COHERENT CsI[Na] 2017 and 2021 data loaders (presets ``coherent_csi_2017``, ``coherent_csi_2021``).

Both loaders check that the preset's observable is compatible with the release, attach the
beam-on coincidence counts as :class:`~cevnsjax.experiment.Observed` (Poisson) and fill the
background templates the spec names (``[[background]] type = "template"`` without ``counts``);
``scale`` in the spec multiplies the template (1 = the nominal normalisation below).

2017 release (arXiv:1804.09459; ``physics/COHERENT.md`` §1), observable = PE x arrival time on the
release grid (2-PE x 0.5-us cells) or a contiguous block of it:

* ``steady_state``    -- the anti-coincidence (AC) beam-on grid, counts as released;
* ``prompt_neutrons`` -- promptPDF.txt [counts per 1-PE bin per GWh] x 7.47594 GWh x the yaml
  acceptance at 1-PE bin centres, summed into 2-PE bins, times arrivalTimePDF_promptNeutrons.txt
  (normalisation +-25 %, yaml). Fixed template: it does not follow changes of the efficiency
  parameters in ``ExperimentParams``.

2021 release (arXiv:2110.07730; COHERENT.md §2), observable = PE x t_rec bins inside the ROI
0 <= PE < 60, 0 <= t_rec < 6 us; the unbinned event lists are histogrammed with [lo, hi) bins:

* ``steady_state`` -- the AC beam-on events, histogrammed (1295 in the ROI);
* ``brn``, ``nin`` -- beam-related and neutrino-induced neutrons: brnPE/ninPE (1-PE bins) x
  brnTrec/ninTrec (10-ns bins), each normalised to 1 inside the ROI, times the expected counts in
  the ROI. **The release gives only shapes**; the normalisations 18.4 (BRN, +-25 %) and 5.6 (NIN,
  +-70 %) are those of the BarbeauGroup/chi2_pull_test fit framework (config/csi.json ``norms``),
  not a release file. Fixed templates (the efficiencies are taken to be included, as in that code).

The spec has no key for an arrival-time efficiency, so ``load_2021`` also sets
``defaults.time_efficiency = Coherent2021TimeEfficiency()`` (unless one is set already).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cevnsjax.detector.backgrounds import Template
from cevnsjax.detector.response import Coherent2017Efficiency, Coherent2021TimeEfficiency
from cevnsjax.experiment import Experiment, Observed
from cevnsjax.io.registry import register_loader
from cevnsjax.io.releases.coherent_csi_2017 import load_coherent_csi_2017
from cevnsjax.io.releases.coherent_csi_2021 import (
    ROI_PE_MAX as ROI21_PE_MAX,
    ROI_T_MAX_US as ROI21_T_MAX_US,
    load_coherent_csi_2021,
)

__all__ = ["load_2017", "load_2021", "Coherent2021TimeEfficiency", "prompt_neutron_grid_2017", "histogram_events", "rebin_pdf",
           "BRN_NORM_2021", "NIN_NORM_2021", "TEMPLATES_2017", "TEMPLATES_2021"]

#: expected BRN and NIN counts in the 2021 ROI (BarbeauGroup/chi2_pull_test config/csi.json "norms";
#: not in the release)
BRN_NORM_2021 = 18.4
NIN_NORM_2021 = 5.6
TEMPLATES_2017 = ("steady_state", "prompt_neutrons")
TEMPLATES_2021 = ("steady_state", "brn", "nin")


def _slice(edges: np.ndarray, release: np.ndarray, what: str, name: str) -> slice:
    """The release bins covered by ``edges`` (which must be a contiguous run of release edges)."""
    edges = np.asarray(edges, float)
    i0 = int(np.argmin(np.abs(release - edges[0])))
    n = edges.size
    if i0 + n > release.size or not np.allclose(edges, release[i0:i0 + n], atol=1e-9):
        raise ValueError(f"{name}: {what} edges {edges.tolist()} must be consecutive edges of the release grid "
                         f"{release.tolist()} (no rebinning)")
    return slice(i0, i0 + n - 1)


def prompt_neutron_grid_2017(d, efficiency=None) -> np.ndarray:
    """Expected prompt-neutron counts on the release grid (25 x 24): promptPDF x exposure x acceptance
    at 1-PE bin centres (the yaml's prescription), summed into 2-PE bins, x the neutron time PDF."""
    eff = efficiency or Coherent2017Efficiency(d.acceptance_a, d.acceptance_k_per_pe, d.acceptance_x0_pe)
    per_1pe = d.prompt_neutron_per_gwh * d.exposure_gwh * np.asarray(eff(d.prompt_neutron_pe_centres))
    lo = d.prompt_neutron_pe_centres - 0.5  # 1-PE bins [n, n+1)
    pe = np.zeros(d.pe_edges.size - 1)
    idx = np.searchsorted(d.pe_edges, lo, side="right") - 1
    ok = (idx >= 0) & (idx < pe.size)
    np.add.at(pe, idx[ok], per_1pe[ok])
    t = d.arrival_pdf_prompt_neutron / d.arrival_pdf_prompt_neutron.sum()
    return pe[:, None] * t[None, :]


def _template(name: str, scale: float, counts: np.ndarray) -> Template:
    return Template(scale, np.asarray(counts, float), name=name)


def _with(experiment: Experiment, observed: Observed, templates: list, **params) -> Experiment:
    d = experiment.defaults
    defaults = d.replace(backgrounds=tuple(d.backgrounds) + tuple(templates), **params)
    return dataclasses.replace(experiment, observed=observed, defaults=defaults)


def _check_pe_time(experiment: Experiment, loader: str):
    obs = experiment.observable
    if obs.kind != "PE":
        raise ValueError(f"{loader}: detector.observable must be 'PE' (the release is binned in photo-electrons), "
                         f"got {obs.kind!r}")
    if obs.time_edges_us is None:
        raise ValueError(f"{loader}: detector.time_edges_us is required: the release's counts are binned in "
                         "arrival time and the signal needs its time-window fractions")


@register_loader("coherent_csi_2017")
def load_2017(path, spec: dict, experiment: Experiment, pending) -> Experiment:
    """Attach the 2017 coincidence beam-on counts and the steady-state / prompt-neutron templates."""
    name = "coherent_csi_2017 loader"
    _check_pe_time(experiment, name)
    d = load_coherent_csi_2017(path)
    obs = experiment.observable
    sp = _slice(np.asarray(obs.edges), d.pe_edges, "PE", name)
    st = _slice(np.asarray(obs.time_edges_us), d.t_edges_us, "time", name)
    grids = {"steady_state": d.anticoincidence_on, "prompt_neutrons": prompt_neutron_grid_2017(d)}
    templates = []
    for _, tname, scale in pending:
        if tname not in grids:
            raise ValueError(f"{name}: no background template named {tname!r}; the 2017 release provides "
                             f"{', '.join(TEMPLATES_2017)}")
        templates.append(_template(tname, scale, grids[tname][sp, st]))
    observed = Observed(d.coincidence_on[sp, st].astype(float), label="COHERENT CsI 2017 coincidence beam-on counts")
    return _with(experiment, observed, templates)


def histogram_events(pe, t_us, pe_edges, t_edges_us) -> np.ndarray:
    """Counts of events in [lo, hi) x [lo, hi) cells (events outside all cells are dropped)."""
    pe, t = np.asarray(pe, float), np.asarray(t_us, float)
    pe_edges, t_edges = np.asarray(pe_edges, float), np.asarray(t_edges_us, float)
    i = np.searchsorted(pe_edges, pe, side="right") - 1
    j = np.searchsorted(t_edges, t, side="right") - 1
    ok = (i >= 0) & (i < pe_edges.size - 1) & (j >= 0) & (j < t_edges.size - 1)
    out = np.zeros((pe_edges.size - 1, t_edges.size - 1))
    np.add.at(out, (i[ok], j[ok]), 1.0)
    return out


def rebin_pdf(centres, values, edges, lo, hi) -> np.ndarray:
    """Fractions of a binned PDF (equal-width bins at ``centres``) in ``edges``, normalised to 1 in
    [lo, hi); the cumulative distribution is interpolated linearly (uniform within a release bin)."""
    c = np.asarray(centres, float)
    w = c[1] - c[0]
    be = np.concatenate([c - 0.5 * w, c[-1:] + 0.5 * w])
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(values, float))])
    F = lambda x: np.interp(x, be, cum)
    norm = F(hi) - F(lo)
    if not norm > 0:
        raise ValueError(f"PDF has no weight in [{lo}, {hi})")
    return np.diff(F(np.asarray(edges, float))) / norm


@register_loader("coherent_csi_2021")
def load_2021(path, spec: dict, experiment: Experiment, pending) -> Experiment:
    """Histogram the 2021 beam-on C events in the preset's (PE, t_rec) bins; steady-state/BRN/NIN templates."""
    name = "coherent_csi_2021 loader"
    _check_pe_time(experiment, name)
    obs = experiment.observable
    pe_edges, t_edges = np.asarray(obs.edges), np.asarray(obs.time_edges_us)
    if pe_edges[0] < 0 or pe_edges[-1] > ROI21_PE_MAX or t_edges[0] < 0 or t_edges[-1] > ROI21_T_MAX_US:
        raise ValueError(f"{name}: bins must lie inside the release's ROI 0 <= PE <= {ROI21_PE_MAX:g}, "
                         f"0 <= t_rec <= {ROI21_T_MAX_US:g} us (the event lists and the BRN/NIN PDFs end there); "
                         f"got PE {pe_edges[0]:g}..{pe_edges[-1]:g}, t {t_edges[0]:g}..{t_edges[-1]:g} us")
    d = load_coherent_csi_2021(path)

    def neutrons(norm, pe_pdf, t_shape):
        fp = rebin_pdf(d.pdf_pe_centres, pe_pdf, pe_edges, 0.0, ROI21_PE_MAX)
        ft = rebin_pdf(d.pdf_t_centres_us, t_shape, t_edges, 0.0, ROI21_T_MAX_US)
        return norm * fp[:, None] * ft[None, :]

    makers = {
        "steady_state": lambda: histogram_events(d.ac_pe, d.ac_t_us, pe_edges, t_edges),
        "brn": lambda: neutrons(BRN_NORM_2021, d.brn_pe_pdf, d.brn_t_shape),
        "nin": lambda: neutrons(NIN_NORM_2021, d.nin_pe_pdf, d.nin_t_shape),
    }
    templates = []
    for _, tname, scale in pending:
        if tname not in makers:
            raise ValueError(f"{name}: no background template named {tname!r}; the 2021 release provides "
                             f"{', '.join(TEMPLATES_2021)}")
        templates.append(_template(tname, scale, makers[tname]()))
    observed = Observed(histogram_events(d.c_pe, d.c_t_us, pe_edges, t_edges),
                        label="COHERENT CsI 2021 coincidence beam-on events")
    # the spec has no time-efficiency key: the 2021 analysis's is attached here unless one is set
    t_eff = experiment.defaults.time_efficiency or Coherent2021TimeEfficiency()
    return _with(experiment, observed, templates, time_efficiency=t_eff)
