"""Presets coherent_csi_2017, coherent_csi_2021 and cicenns: predictions against published numbers,
the spread over modelling choices (printed with ``pytest -s`` and recorded as properties), the
attached data and background templates, and the loaders' checks of their spec.

Each experiment is built and prepared once per module (fixtures); every variant of the spread
re-prepares only what it changes.
"""

import dataclasses
from dataclasses import dataclass

import jax
import numpy as np
import pytest

from cevnsjax.detector.response import Coherent2017Efficiency
from cevnsjax.experiment import Observable, RecoilGrid, predict
from cevnsjax.io.presets.coherent_csi import Coherent2021TimeEfficiency, histogram_events
from cevnsjax.io.spec import experiment_from_spec, load_spec
from cevnsjax.physics.formfactors import Helm
from cevnsjax.physics.xsec import CrossSectionModel
from cevnsjax.sources import PionDAR

LY_2017 = 13.348  # PE/keVee (coherent_parameters.yaml)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class _EfficiencyOfEee:
    """The 2017 acceptance for an E_ee observable (no PE smearing): eps(light_yield x E_ee)."""

    light_yield: float
    eff: Coherent2017Efficiency

    def __call__(self, E_ee):
        return self.eff(E_ee * self.light_yield)


def _signal(exp, theta=None):
    return np.asarray(predict(theta or exp.defaults, exp.prepare()).signal)


def _variant(exp, form_factor=None, couplings=None, observable=None, **params):
    model = exp.model
    if form_factor is not None or couplings is not None:
        model = CrossSectionModel(form_factor=form_factor or model.form_factor, couplings=couplings or model.couplings)
    defaults = exp.defaults.replace(backgrounds=(), **params)
    # a coarser recoil grid for the spread (speed): 80 x 3 nodes agrees with 150 x 4 to < 1e-4
    g = exp.recoil_grid
    return dataclasses.replace(exp, model=model, observable=observable or exp.observable, defaults=defaults,
                               observed=None, recoil_grid=RecoilGrid(g.min_keV, g.max_keV, 80, 3))


def _report(record_property, title, rows):
    print(f"\n{title}")
    for label, value in rows:
        print(f"  {label:<66s} {value:9.2f}")
        record_property(f"{title}: {label}", round(float(value), 3))


# ------------------------------------------------------------------------------------------ 2017
@pytest.fixture(scope="module")
def csi2017(data_dir):
    from cevnsjax.io.releases.coherent_csi_2017 import load_coherent_csi_2017

    exp = experiment_from_spec(load_spec("coherent_csi_2017"))
    release = load_coherent_csi_2017(data_dir)
    pred = predict(exp.defaults, exp.prepare())
    return exp, release, pred


def test_2017_sm_prediction_in_published_band(csi2017, record_property):
    exp, d, pred = csi2017
    roi = d.roi_mask()  # 6 <= PE <= 30, t <= 6 us (whole 2-PE x 0.5-us cells)
    s = np.asarray(pred.signal)
    n_roi = s[roi].sum()
    # Published SM expectation 173 +- 48 (Science 357, 1123; REFERENCE §8): the preset's choices
    # (Klein-Nystrand, Poisson PE, acceptance at 2-PE bin centres) must lie inside the band.
    assert 173 - 48 <= n_roi <= 173 + 48
    # Regression of this preset (165.03): recoil quadrature converged to < 1e-4 (a 400 x 6 node
    # grid gives the same to 5 digits); 0.5 % leaves room for changes of constants/isotope data.
    assert n_roi == pytest.approx(165.03, rel=5e-3)
    flav = np.asarray(pred.signal_by_flavour)[:, roi].sum(axis=1)  # nu_e, nu_mu, nu_tau, nubar_e, nubar_mu, nubar_tau
    # the prompt nu_mu line (E_R <= 15 keVnr, <= 17.6 PE) gives the smallest share; delayed
    # anti-nu_mu (harder Michel spectrum) the largest; flavours add up to the total (1e-10)
    assert flav[1] < flav[0] < flav[4] and flav[2] == flav[3] == flav[5] == 0
    assert flav.sum() == pytest.approx(n_roi, rel=1e-10)

    # spread over choices the release leaves open (COHERENT.md §1.2): form factor, PE smearing,
    # evaluating the acceptance at 1-PE bin centres (yaml) vs the 2-PE centres of the grid, couplings
    pe1 = np.arange(0.0, 51.0)
    obs = exp.observable

    def run(ff=None, smear=True, one_pe=False, couplings=None):
        pe = pe1 if one_pe else np.asarray(obs.edges)
        if smear:
            o = Observable("PE", tuple(pe), obs.time_edges_us, obs.time_pdfs)
            v = _variant(exp, ff, couplings, o)
        else:
            o = Observable("E_ee_keV", tuple(pe / LY_2017), obs.time_edges_us, obs.time_pdfs)
            v = _variant(exp, ff, couplings, o, resolution=None, efficiency=_EfficiencyOfEee(LY_2017, Coherent2017Efficiency()))
        sig = _signal(v)
        if one_pe:
            sig = sig.reshape(25, 2, -1).sum(axis=1)
        return sig

    helm = run(Helm())
    none = run(smear=False)
    helm_none = run(Helm(), smear=False)
    one_pe = run(one_pe=True)
    pdg = run(couplings="pdg")
    rows = [
        ("preset: Klein-Nystrand, Poisson PE, eff at 2-PE centres, ROI", n_roi),
        ("Helm (Lewin-Smith)", helm[roi].sum()),
        ("no PE smearing (PE = 1.1719 E_R)", none[roi].sum()),
        ("Helm, no PE smearing", helm_none[roi].sum()),
        ("acceptance at 1-PE bin centres (yaml), summed into 2-PE bins", one_pe[roi].sum()),
        ("PDG radiative couplings (g_n^V = -0.512)", pdg[roi].sum()),
        ("preset, 0-50 PE, t <= 6 us", s[:, :12].sum()),
        ("preset, whole grid 0-50 PE, 0-12 us", s.sum()),
        ("bradkav-like: Helm, no smearing, 0-50 PE, 0-12 us (bradkav 167.18)", helm_none.sum()),
    ]
    _report(record_property, "COHERENT CsI 2017 SM prediction [events]", rows)
    # every variant stays inside the published band (the band's +-28 % is the paper's systematic)
    assert all(125 <= v <= 221 for _, v in rows[:6])
    # sizes of the choices (COHERENT.md: Poisson ~+8-10 %, form factor ~7 %): Poisson over no
    # smearing +8.7 %, Helm over Klein-Nystrand +6.2 %, 1-PE acceptance -0.3 %; +-1.5 points each
    assert n_roi / none[roi].sum() - 1 == pytest.approx(0.087, abs=0.015)
    assert helm[roi].sum() / n_roi - 1 == pytest.approx(0.062, abs=0.015)
    assert one_pe[roi].sum() / n_roi - 1 == pytest.approx(-0.003, abs=0.01)
    # Cross-code benchmark: bradkav/CEvNS 167.18 with Helm, no smearing, no time cut and a
    # digitised efficiency. We get 184 (+10 %) with the yaml acceptance; the offset is not
    # explained (bradkav's split nu_e 86.3 / nu_mu + anti-nu_mu 80.9 also differs from ours,
    # 61 / 123, which points at the efficiency or flux bookkeeping there). 15 % tolerance.
    assert helm_none.sum() == pytest.approx(167.18, rel=0.15)


def test_2017_data_and_backgrounds(csi2017):
    exp, d, pred = csi2017
    roi = d.roi_mask()
    assert exp.observed.values.shape == (25, 24) == exp.observable.shape
    # release ROI counts (PROVENANCE.md §2a): C beam-on 547, AC beam-on 405 -- exact integers
    assert exp.observed.values[roi].sum() == 547
    ss = exp.defaults.background("steady_state").template
    pn = exp.defaults.background("prompt_neutrons").template
    assert ss[roi].sum() == 405 and ss.sum() == 1032
    # prompt neutrons: promptPDF x 7.47594 GWh x acceptance -> ~5.4 in the ROI (PROVENANCE.md:
    # "about 5.4"; 5.42 here); all of them arrive within 0-2 us (the release's neutron time PDF)
    assert pn[roi].sum() == pytest.approx(5.42, abs=0.05)
    assert pn[:, 4:].sum() < 0.01 * pn.sum()
    b = np.asarray(pred.background)
    np.testing.assert_allclose(b, ss + pn, rtol=1e-12)
    # C - AC in the ROI is 142 +- 31; signal + prompt neutrons predicted ~170 (1 sigma)
    excess = 547 - 405
    assert abs(excess - (np.asarray(pred.signal)[roi].sum() + pn[roi].sum())) < np.sqrt(547 + 405)


def test_2017_roi_block_and_bad_specs(data_dir):
    spec = load_spec("coherent_csi_2017")
    # a contiguous block of the release grid (the ROI: PE 6-30, t 0-6 us) selects the same cells
    roi = dict(spec, detector=dict(spec["detector"], bins={"start": 6.0, "stop": 30.0, "n": 12},
                                   time_edges_us=[0.5 * i for i in range(13)]))
    exp = experiment_from_spec(roi)
    assert exp.observed.values.shape == (12, 12) and exp.observed.values.sum() == 547
    assert exp.defaults.background("steady_state").template.sum() == 405
    # edges that are not release edges (1-PE bins) are refused: no rebinning of counts
    bad = dict(spec, detector=dict(spec["detector"], bins={"start": 0.0, "stop": 50.0, "n": 50}))
    with pytest.raises(ValueError, match="consecutive edges of the release grid"):
        experiment_from_spec(bad)
    # unknown template name: the message lists the ones the release provides
    bad = dict(spec, background=[{"type": "template", "name": "beam_off"}])
    with pytest.raises(ValueError, match="steady_state, prompt_neutrons"):
        experiment_from_spec(bad)
    # a keVee observable cannot hold the PE-binned release
    det = {k: v for k, v in spec["detector"].items() if k != "resolution"}
    bad = dict(spec, detector=dict(det, observable="E_ee_keV"))
    with pytest.raises(ValueError, match="observable must be 'PE'"):
        experiment_from_spec(bad)
    # without time bins the time-window fractions of the signal would be lost
    det = {k: v for k, v in spec["detector"].items() if k not in ("time_edges_us", "time_pdfs")}
    with pytest.raises(ValueError, match="time_edges_us is required"):
        experiment_from_spec(dict(spec, detector=det))
    # without data: no observed counts, the templates need the loader
    with pytest.raises(ValueError, match="no counts and no"):
        experiment_from_spec({k: v for k, v in spec.items() if k != "data"})


# ------------------------------------------------------------------------------------------ 2021
@pytest.fixture(scope="module")
def csi2021(data_dir):
    from cevnsjax.io.releases.coherent_csi_2021 import load_coherent_csi_2021

    exp = experiment_from_spec(load_spec("coherent_csi_2021"))
    release = load_coherent_csi_2021(data_dir)
    return exp, release, predict(exp.defaults, exp.prepare())


def test_2021_sm_prediction(csi2021, record_property):
    exp, d, pred = csi2021
    n = np.asarray(pred.signal).sum()
    # Published SM expectation 341 +- 11 (th) +- 42 (exp) (COHERENT.md §2.3; 333 is also quoted):
    # within 10 % of 341 (and of 333), the task's tolerance; the preset gives 345.3.
    assert n == pytest.approx(341, rel=0.10)
    assert n == pytest.approx(333, rel=0.10)
    # regression of the preset's choices (KN, tree-level couplings, paper PE bins, 2017 time PDFs): 0.5 %
    assert n == pytest.approx(321.70, rel=5e-3)
    # time efficiency attached by the loader
    assert isinstance(exp.defaults.time_efficiency, Coherent2021TimeEfficiency)

    obs = exp.observable
    pe1 = Observable("PE", tuple(np.arange(0.0, 61.0)), obs.time_edges_us, obs.time_pdfs)
    rows = [("preset: KN (rms 5.04 fm Cs), tree-level couplings, paper PE bins, t eff", n)]
    v1 = _variant(exp, observable=pe1)
    p1 = v1.prepare()
    one_pe = np.asarray(predict(v1.defaults, p1).signal).sum()
    rows.append(("1-PE bins (efficiency at 1-PE centres)", one_pe))
    flat = Coherent2021TimeEfficiency(t0=100.0)  # = 1 over 0-6 us; same pytree structure, no recompilation
    rows.append(("1-PE bins, no time efficiency",
                 np.asarray(predict(v1.defaults.replace(time_efficiency=flat), p1).signal).sum()))
    helm = _variant(exp, form_factor=Helm(), couplings="pdg", observable=pe1)
    ph = helm.prepare()
    rows.append(("1-PE bins, Helm Lewin-Smith (rms 4.80 / 4.74 fm), PDG couplings",
                 np.asarray(predict(helm.defaults, ph).signal).sum()))
    th = helm.defaults.replace(physics=helm.defaults.physics.replace(delta_rn_fm=5.104 - 4.8045))
    helm_rn = np.asarray(predict(th, ph).signal).sum()
    rows.append(("1-PE bins, Helm with r_n = 5.10 fm, PDG couplings (COHERENT fit code csi.json)", helm_rn))
    pdg_one_pe = _signal(_variant(exp, couplings="pdg", observable=pe1)).sum()
    rows.append(("1-PE bins, PDG radiative couplings (COHERENT's convention)", pdg_one_pe))
    _report(record_property, "COHERENT CsI 2021 SM prediction in the ROI [events]", rows)
    # every choice within 10 % of the published 341 except Helm-LS's small radius (+8 %: kept in)
    assert all(abs(v / 341 - 1) < 0.10 for _, v in rows if "no time" not in _)
    # the paper's wide PE bins (efficiency at their centres) vs 1-PE bins: < 2 %
    assert abs(n / one_pe - 1) < 0.02
    # With the conventions of COHERENT's own fit code (Helm with r_n = 5.104 / 5.050 fm, radiative
    # g_n^V) we get 332.0, 0.3 % below 333 and 2.6 % below 341; Klein-Nystrand (rms 5.04 fm) gives
    # 340.9. The 2017 time PDFs stand in for snsFlux2D.root (~1 %), so this does not decide between
    # the two quoted numbers; 1 % regression tolerance.
    assert helm_rn == pytest.approx(332.0, rel=0.01)
    assert pdg_one_pe == pytest.approx(340.9, rel=0.01)
    assert pdg_one_pe / one_pe == pytest.approx(1.073, rel=0.005)  # tree -> radiative g_n^V: +7 %


def test_2021_data_and_backgrounds(csi2021):
    exp, d, pred = csi2021
    o = exp.observed.values
    # release ROI counts (PROVENANCE.md §2b): C 1578, AC 1295 -- exact
    assert o.shape == exp.observable.shape == (9, 5) and o.sum() == 1578
    assert exp.defaults.background("steady_state").template.sum() == 1295
    # BRN and NIN normalised to the fit code's ROI expectations 18.4 and 5.6 (to rounding)
    brn = exp.defaults.background("brn").template
    nin = exp.defaults.background("nin").template
    assert brn.sum() == pytest.approx(18.4, rel=1e-12) and nin.sum() == pytest.approx(5.6, rel=1e-12)
    # BRN arrive with the beam (0.5-1 us): > 95 % in the first microsecond; NIN follow the
    # delayed neutrinos: most after 1 us (release time PDFs: 78 % after 1 us)
    assert brn[:, :2].sum() > 0.95 * brn.sum() and nin[:, 2:].sum() > 0.7 * nin.sum()
    # C - AC = 283 +- 54 against signal + BRN + NIN ~ 369: within 2 sigma
    excess = 1578 - 1295
    assert abs(excess - (np.asarray(pred.signal).sum() + 24.0)) < 2 * np.sqrt(1578 + 1295)
    # histogramming is [lo, hi): an event on an edge goes to the upper bin, outside edges dropped
    h = histogram_events([8.0, 60.0, 3.0], [0.5, 1.0, 6.0], [0, 8, 60], [0, 0.5, 6])
    assert h.tolist() == [[0, 0], [0, 1]]


def test_2021_bad_specs(data_dir):
    spec = load_spec("coherent_csi_2021")
    bad = dict(spec, detector=dict(spec["detector"], edges=[0.0, 30.0, 70.0]))
    with pytest.raises(ValueError, match="inside the release's ROI"):
        experiment_from_spec(bad)
    bad = dict(spec, background=[{"type": "template", "name": "prompt_neutrons"}])
    with pytest.raises(ValueError, match="steady_state, brn, nin"):
        experiment_from_spec(bad)
    # without the loader the preset still builds, with the time efficiency from [detector.time_efficiency]
    exp = experiment_from_spec({k: v for k, v in spec.items() if k not in ("data", "background")})
    assert exp.observed is None and float(exp.defaults.time_efficiency.t0) == 0.52


# ------------------------------------------------------------------------------------------ CICENNS
@pytest.fixture(scope="module")
def cicenns(data_dir):
    exp = experiment_from_spec(load_spec("cicenns"))
    coherent = dataclasses.replace(exp, name="coherent_talk", mass_kg=14.6, source=PionDAR.from_flux(4.7e7 / 3, 19.3))
    return exp, coherent


def test_cicenns_events_per_year(cicenns, record_property):
    exp, coherent = cicenns
    # 2.0e7 cm^-2 s^-1 summed over three flavours at 10.5 m
    assert exp.source.flux_per_flavour * 3 == pytest.approx(2.0e7, rel=1e-12)
    n = _signal(exp).sum()
    nc = _signal(coherent).sum()
    _report(record_property, "CICENNS / COHERENT events per year (same assumptions)",
            [("CICENNS 300 kg, 10.5 m, 2.0e7 (talk ~2500)", n), ("COHERENT 14.6 kg, 19.3 m, 4.7e7 (talk 306)", nc)])
    # The talk's two numbers are not reproducible together better than ~+-3.5 %: their ratio 8.17
    # is 7 % below the mass x flux ratio 8.744 that any common response gives (asserted to 1e-9).
    # Tolerance 10 %: that inconsistency, the unknown threshold/time window of the talk and the
    # form-factor choice (6 %). Preset: 2549 (+2 %) and 291.6 (-4.7 %).
    assert n / nc == pytest.approx((300 / 14.6) * (2.0 / 4.7), rel=1e-9)
    assert n == pytest.approx(2500, rel=0.10)
    assert nc == pytest.approx(306, rel=0.10)
