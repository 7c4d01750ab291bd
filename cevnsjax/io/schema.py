"""The experiment specification as data: every table and key with its type, unit, default and meaning.

:mod:`cevnsjax.io.spec` parses; this module describes. ``docs/spec.md`` is generated from it
(:func:`markdown`, ``cevnsjax init --doc``), ``cevnsjax init`` writes :data:`TEMPLATE`, and
``tests/test_spec_docs.py`` checks that the keys the parser accepts and the keys listed here are the
same, so the two cannot drift apart.

A :class:`Table` is a TOML table (``path`` such as ``"detector.quenching"``; ``background`` is the
array of tables ``[[background]]``). Tables with variants are chosen by a ``selector`` key (``type``
or ``model``): one :class:`Table` per variant.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Key", "Table", "TABLES", "TEMPLATE", "accepted_keys", "markdown", "table"]


@dataclass(frozen=True)
class Key:
    """One key: TOML type, unit ('' if none), default (None: no default), one-line meaning."""

    name: str
    type: str
    doc: str
    unit: str = ""
    default: object = None
    required: bool = False
    choices: tuple = ()


@dataclass(frozen=True)
class Table:
    """A table (or one variant of it, chosen by ``selector`` = ``variant``) and its keys."""

    path: str
    doc: str
    keys: tuple[Key, ...]
    selector: str | None = None
    variant: str | None = None

    @property
    def title(self) -> str:
        head = f"[[{self.path}]]" if self.path == "background" else ("top level" if self.path == "spec" else f"[{self.path}]")
        return head + (f' {self.selector} = "{self.variant}"' if self.variant else "")


def _req(name, type_, doc, unit="", choices=()):
    return Key(name, type_, doc, unit, None, True, tuple(choices))


def _opt(name, type_, doc, unit="", default=None, choices=()):
    return Key(name, type_, doc, unit, default, False, tuple(choices))


_SOURCES = ("reactor", "pion_dar", "tabulated")
_QUENCH = ("lindhard", "modified_lindhard", "constant", "tabulated", "polynomial")
_RES = ("ge", "gaussian", "poisson_pe", "gamma_pe")
_EFF = ("coherent_2017", "coherent_2021", "tabulated", "constant")
_BKG = ("flat", "exponential", "gaussian_line", "template")
_LOADERS = ("coherent_csi_2017", "coherent_csi_2021", "coherent_lar_2020", "dresden_ii")
_Z_A = (_opt("Z", "number", "atomic number of the quenched nucleus (with A: one model for every nucleus)", "",
             "heaviest element of the formula"),
        _opt("A", "number", "mass number / atomic mass of the quenched nucleus", "u", "that element's atomic mass"))
_BKG_NAME = "name of the component (parameters are bkg.<name>.<field>)"

TABLES: tuple[Table, ...] = (
    Table("spec", "The top level of the file.", (
        _req("name", "string", "experiment name (parameter sites, file names)"),
        _opt("description", "string", "one line shown by `cevnsjax experiments` and `predict`", "", '""'),
        _req("target", "table", "[target]"), _req("exposure", "table", "[exposure]"),
        _req("source", "table", "[source]"), _req("detector", "table", "[detector]"),
        _opt("cross_section", "table", "[cross_section]", "", "Standard Model, Helm"),
        _opt("background", "array of tables", "[[background]] components", "", "none"),
        _opt("data", "table", "[data]: observed counts through a registered loader", "", "none (predictions only)"),
        _opt("fit", "table", "[fit]: priors of the free parameters", "", "none"),
    )),
    Table("target", "Detector material and mass.", (
        _req("formula", "string", "chemical formula, e.g. 'Ge', 'CsI', 'NaI', 'CaWO4', 'Al2O3', 'Li2MoO4' "
                                  "(natural isotopic abundances)"),
        _req("mass_kg", "number", "target mass", "kg"),
    )),
    Table("exposure", "Live time.", (_req("live_days", "number", "live time", "day"),)),
    Table("source", "Nuclear reactor (electron antineutrinos). Without low_energy_tables the flux is the "
                    "Huber-Mueller fit, valid 2-8 MeV only: thresholds that need E_nu < 2 MeV get a warning.", (
        _req("type", "string", "source kind", "", _SOURCES),
        _opt("preset", "string", "power and distance of a known site", "", "none", ("dresden_ii", "conus")),
        _opt("power_GW", "number", "thermal power (required without preset)", "GW", "preset's"),
        _opt("distance_m", "number", "core-detector distance (required without preset)", "m", "preset's"),
        _opt("fission_fractions", "string or table", "'dayabay', 'texono' or {U235 = .., U238 = .., Pu239 = .., "
                                                     "Pu241 = ..}", "", "dayabay"),
        _opt("energy_per_fission", "string or table", "'ma2013', 'older', 'kopeikin2004' or {isotope = MeV}", "MeV",
             "ma2013"),
        _opt("nu_per_fission", "table", "antineutrinos per fission {isotope = ..}", "", "TEXONO 6.14/7.08/5.58/6.42"),
        _opt("normalize_to_yield", "bool", "rescale each fission spectrum to integrate to nu_per_fission", "", False),
        _opt("low_energy_tables", "bool", "add the spectrum below 2 MeV from the data folder ($CEVNSJAX_DATA)", "",
             False),
        _opt("high", "string", "spectrum above the join (with low_energy_tables)", "", "huber_mueller",
             ("huber_mueller", "mueller2011", "table")),
        _opt("high_e_max", "number", "upper end of the high-energy spectrum (with low_energy_tables)", "MeV", 8.0),
        _opt("capture", "string", "238U(n,gamma) -> 239U/239Np spectrum (needs low_energy_tables)", "",
             "bestiole with tables, else none", ("bestiole", "curve", "none")),
        _opt("total_flux_cm2_s", "number", "rescale the spectra to this total flux", "cm^-2 s^-1", "not rescaled"),
    ), "type", "reactor"),
    Table("source", "Pion decay at rest (prompt nu_mu, delayed nu_e and anti-nu_mu).", (
        _req("type", "string", "source kind", "", _SOURCES),
        _opt("preset", "string", "a known beam; without it give nu_per_flavour_per_proton, protons_per_second, "
                                 "distance_m", "", "none", ("coherent_csi_2017", "sns", "csns")),
        _opt("nu_per_flavour_per_proton", "number", "neutrinos of each flavour per proton on target", "", None),
        _opt("protons_per_second", "number", "protons on target per second", "s^-1", None),
        _opt("distance_m", "number", "source-detector distance", "m", "19.3 (sns), 10.5 (csns)"),
        _opt("power_MW", "number", "beam power (preset sns)", "MW", 1.4),
        _opt("total_flux_cm2_s", "number", "total flux of the three flavours (preset csns)", "cm^-2 s^-1", 2.0e7),
    ), "type", "pion_dar"),
    Table("source", "A flux table (two columns: E_nu [MeV], dPhi/dE [cm^-2 s^-1 MeV^-1]).", (
        _req("type", "string", "source kind", "", _SOURCES),
        _req("path", "string", "table file; ${CEVNSJAX_DATA} expands to the data folder, relative to the spec"),
        _opt("flavour", "string", "neutrino flavour", "", "e", ("e", "mu", "tau")),
        _opt("antineutrino", "bool", "antineutrinos (true) or neutrinos", "", True),
        _opt("interpolation", "string", "interpolation between table points", "", "linear"),
        _opt("scale", "number", "factor on the table", "", 1.0),
    ), "type", "tabulated"),
    Table("cross_section", "Cross-section model (Standard Model couplings, form factor, kinematics).", (
        _opt("form_factor", "string", "nuclear form factor", "", "helm", ("helm", "klein_nystrand", "symmetrized_fermi")),
        _opt("couplings", "string", "nucleon vector couplings", "", "tree",
             ("tree", "cadeddu", "dukecevns_giunti", "erler_su", "nudl", "pdg")),
        _opt("kinematics", "string", "'full' (with -E_R/E + E_R^2/2E^2) or 'standard' (1 - M E_R/2E^2)", "", "full",
             ("full", "standard")),
        _opt("charge_radius_correction", "string", "neutrino charge-radius correction added to g_p^V", "", "none",
             ("erler", "giunti", "giunti_legacy")),
    )),
    Table("detector", "What is measured and how it is binned.", (
        _req("observable", "string", "binned quantity: recoil energy, electron-equivalent energy or photoelectrons",
             "keVnr / keVee / PE", ("E_R_keV", "E_ee_keV", "PE")),
        _opt("edges", "array", "bin edges (give edges or bins)", "observable's", None),
        _opt("bins", "table", "{start, stop, n, spacing}: regular bins (give edges or bins)", "observable's", None),
        _opt("recoil_grid", "table", "{min_keV, max_keV, n_bins, nodes_per_bin}: fine recoil grid of the response "
                                     "(needed with quenching or resolution)", "keVnr", None),
        _opt("time_edges_us", "array", "arrival-time bin edges (pion DAR)", "us", None),
        _opt("time_pdfs", "table", "{flux component = arrival-time PDF file}", "", None),
        _opt("truncate_at_zero", "bool", "renormalise the Gaussian response to E_obs > 0", "", False),
        _opt("efficiency_subbins", "integer", "efficiency averaged over this many sub-bins of each bin", "", 1),
        _opt("smearing", "string", "'exact': response per node and call; 'grid': resolution fixed and tabulated once",
             "", "exact", ("exact", "grid")),
        _opt("smearing_step", "number", "grid step (smearing = 'grid')", "keV or keVee", "automatic (1e-7 accuracy)"),
        _opt("quenching", "table", "[detector.quenching] (E_ee_keV and PE observables)", "", None),
        _opt("resolution", "table", "[detector.resolution]", "", "perfect resolution"),
        _opt("efficiency", "table", "[detector.efficiency]", "", "1"),
        _opt("time_efficiency", "table", "[detector.time_efficiency]", "", "1"),
    )),
    Table("detector.bins", "Regular bins (inline table `bins = {start = .., stop = .., n = ..}`).", (
        _req("start", "number", "lowest edge", "observable's"), _req("stop", "number", "highest edge", "observable's"),
        _req("n", "integer", "number of bins"),
        _opt("spacing", "string", "linear or logarithmic", "", "lin", ("lin", "log")),
    )),
    Table("detector.recoil_grid", "Fine log-spaced recoil bins on which the response is integrated.", (
        _req("min_keV", "number", "lowest recoil energy", "keVnr"), _req("max_keV", "number", "highest recoil energy", "keVnr"),
        _opt("n_bins", "integer", "number of fine bins", "", 300),
        _opt("nodes_per_bin", "integer", "Gauss-Legendre nodes per fine bin", "", 4),
    )),
    Table("detector.quenching", "Standard Lindhard, Q = k g(eps)/(1 + k g(eps)). For a compound without Z, A "
                                "each nucleus is quenched with its own k(Z, A) and eps(Z).", (
        _req("model", "string", "quenching model", "", _QUENCH),
        _opt("k", "number", "Lindhard k (fit parameter `k`)", "", "0.133 Z^(2/3) A^(-1/2)"), *_Z_A,
    ), "model", "lindhard"),
    Table("detector.quenching", "Modified Lindhard (Sorensen 2015), Q = k g/(1 + k g) - q/eps, capped at q_max.", (
        _req("model", "string", "quenching model", "", _QUENCH),
        _opt("k", "number", "Lindhard k (fit parameter `k`)", "", 0.157),
        _opt("q", "number", "cutoff parameter (fit parameter `q`)", "", 0.0),
        _opt("q_max", "number", "smooth cap on Q", "", 1.0), *_Z_A,
    ), "model", "modified_lindhard"),
    Table("detector.quenching", "A constant quenching factor.", (
        _req("model", "string", "quenching model", "", _QUENCH),
        _req("value", "number", "Q = E_ee / E_R"),
    ), "model", "constant"),
    Table("detector.quenching", "Measured quenching tables (Dresden-II Fef / YBe file format).", (
        _req("model", "string", "quenching model", "", _QUENCH),
        _req("path", "string", "table file (${CEVNSJAX_DATA} expands)"),
        _opt("table", "string", "which column set of the file", "", "the first"),
    ), "model", "tabulated"),
    Table("detector.quenching", "Light yield polynomial (COHERENT CsI 2021): E_ee = sum c_i E_R^(i+1), E_R in MeVnr.", (
        _req("model", "string", "quenching model", "", _QUENCH),
        _req("coefficients", "array", "polynomial coefficients c_0..c_3", "MeVnr^-i"),
    ), "model", "polynomial"),
    Table("detector.resolution", "Ge ionisation resolution sigma = sqrt(sigma_n^2 + F eps E).", (
        _req("model", "string", "resolution model", "", _RES),
        _opt("sigma_noise_keV", "number", "electronic noise sigma_n", "keVee", 0.0685),
        _opt("fano", "number", "Fano factor F", "", 0.11),
        _opt("eps_pair_keV", "number", "energy per electron-hole pair", "keV", 2.96e-3),
    ), "model", "ge"),
    Table("detector.resolution", "Gaussian sigma(E) = sqrt(sigma0^2 + (frac E)^2 + slope E).", (
        _req("model", "string", "resolution model", "", _RES),
        _req("sigma0", "number", "constant term", "observable's"),
        _opt("frac", "number", "term proportional to E", "", 0.0),
        _opt("slope", "number", "term proportional to sqrt(E)", "observable's", 0.0),
    ), "model", "gaussian"),
    Table("detector.resolution", "Photoelectron counting, N_PE ~ Poisson(light_yield E_ee).", (
        _req("model", "string", "resolution model", "", _RES),
        _req("light_yield", "number", "photoelectrons per keVee", "PE/keVee"),
    ), "model", "poisson_pe"),
    Table("detector.resolution", "COHERENT CsI 2021 Gamma PE smearing (mean E_ee/a, shape 1 + b E_ee).", (
        _req("model", "string", "resolution model", "", _RES),
        _opt("a", "number", "keVee per PE", "keVee", 0.0749), _opt("b", "number", "shape slope", "keVee^-1", 9.56),
    ), "model", "gamma_pe"),
    Table("detector.efficiency", "COHERENT CsI 2017 acceptance a/(1 + exp(-k (PE - x0))) with the 5-6 PE step.", (
        _req("model", "string", "efficiency model", "", _EFF),
        _opt("a", "number", "plateau", "", 0.6655), _opt("k", "number", "slope", "PE^-1", 0.4942),
        _opt("x0", "number", "midpoint", "PE", 10.8507),
    ), "model", "coherent_2017"),
    Table("detector.efficiency", "COHERENT CsI 2021 a/(1 + exp(-b (PE - c))) + d, 0 above pe_max.", (
        _req("model", "string", "efficiency model", "", _EFF),
        _opt("a", "number", "plateau", "", 1.32045), _opt("b", "number", "slope", "PE^-1", 0.285979),
        _opt("c", "number", "midpoint", "PE", 10.8646), _opt("d", "number", "offset", "", -0.333322),
        _opt("pe_max", "number", "upper end of the region of interest", "PE", 60.0),
    ), "model", "coherent_2021"),
    Table("detector.efficiency", "An efficiency table (observable, efficiency columns).", (
        _req("model", "string", "efficiency model", "", _EFF),
        _req("path", "string", "table file (${CEVNSJAX_DATA} expands)"),
        _opt("below", "number", "efficiency below the first table point", "", 0.0),
    ), "model", "tabulated"),
    Table("detector.efficiency", "A constant efficiency.", (
        _req("model", "string", "efficiency model", "", _EFF),
        _req("value", "number", "efficiency (fit parameter efficiency.value)"),
    ), "model", "constant"),
    Table("detector.time_efficiency", "CsI 2021 arrival-time efficiency: 1 before t0, exp(-slope (t - t0)) until t_max.", (
        _req("model", "string", "time-efficiency model", "", ("coherent_2021",)),
        _opt("t0", "number", "start of the decay", "us", 0.52), _opt("slope", "number", "decay rate", "us^-1", 0.0494),
        _opt("t_max", "number", "end of the window", "us", 6.0),
    ), "model", "coherent_2021"),
    Table("background", "Constant rate.", (
        _req("type", "string", "background shape", "", _BKG),
        _req("rate", "number", "rate (fit parameter bkg.<name>.rate)", "counts/(unit kg day)"),
        _opt("name", "string", _BKG_NAME, "", "flat"),
    ), "type", "flat"),
    Table("background", "rate0 exp(-E/decay), integrated over each bin.", (
        _req("type", "string", "background shape", "", _BKG),
        _req("rate0", "number", "rate at E = 0", "counts/(unit kg day)"),
        _req("decay", "number", "decay constant", "observable's"),
        _opt("name", "string", _BKG_NAME, "", "exponential"),
    ), "type", "exponential"),
    Table("background", "A Gaussian line.", (
        _req("type", "string", "background shape", "", _BKG),
        _req("amplitude", "number", "total rate in the line", "counts/(kg day)"),
        _req("centre", "number", "mean", "observable's"), _req("sigma", "number", "width", "observable's"),
        _opt("name", "string", _BKG_NAME, "", "line<i>"),
    ), "type", "gaussian_line"),
    Table("background", "scale x a template of counts per bin (given here or filled by the [data] loader).", (
        _req("type", "string", "background shape", "", _BKG),
        _req("name", "string", _BKG_NAME),
        _opt("scale", "number", "factor on the template (fit parameter bkg.<name>.scale)", "", 1.0),
        _opt("counts", "array", "counts per bin for the whole exposure", "counts", "from the [data] loader"),
    ), "type", "template"),
    Table("data", "Observed counts through a registered loader (published data releases).", (
        _req("loader", "string", "loader name", "", _LOADERS),
        _req("path", "string", "data folder or file (${CEVNSJAX_DATA} expands)"),
    )),
    Table("fit", "Free parameters of `cevnsjax fit`; `cevnsjax scan` profiles the nuisances among them (not signal_scale or "
                 "physics parameters) unless --profile says otherwise.", (
        _opt("priors", "table", "[fit.priors]: parameter name = [kind, args...], kind uniform (lo, hi), normal "
                                "(mu, sigma), log_uniform, truncated_normal, half_normal, log_normal; names from "
                                "`cevnsjax params SPEC`", "", "none"),
    )),
)


def table(path: str, variant: str | None = None) -> Table:
    """The schema of one table (variant: the value of its ``type``/``model`` key)."""
    for t in TABLES:
        if t.path == path and t.variant == variant:
            return t
    raise KeyError(f"no table [{path}]{'' if variant is None else ' ' + variant} in the schema")


def accepted_keys() -> dict[tuple[str, str | None], tuple[frozenset, frozenset]]:
    """{(table path, variant): (required keys, optional keys)} as documented."""
    return {(t.path, t.variant): (frozenset(k.name for k in t.keys if k.required),
                                  frozenset(k.name for k in t.keys if not k.required)) for t in TABLES}


def _fmt_default(k: Key) -> str:
    if k.required:
        return "**required**"
    if k.default is None:
        return "-"
    if isinstance(k.default, bool):
        return "true" if k.default else "false"
    return f"`{k.default}`" if not isinstance(k.default, str) or k.default.startswith('"') else str(k.default)


def markdown() -> str:
    """``docs/spec.md``: every table and key with type, unit, default and meaning, and an annotated example."""
    out = ["# Experiment specification (TOML)", "",
           "<!-- generated from cevnsjax/io/schema.py by `cevnsjax init --doc docs/spec.md`; do not edit by hand -->",
           "",
           "An experiment is one TOML file: `cevnsjax predict FILE`, `cevnsjax fit FILE`, `cevnsjax scan FILE`. "
           "`cevnsjax init FILE` writes the annotated example at the end of this page; `cevnsjax params FILE` lists "
           "the parameter names that `[fit.priors]`, `--prior`, `--param` and `--fix` accept. Unknown keys are "
           "rejected with the closest valid one. `${CEVNSJAX_DATA}` in a path expands to the published-data folder.",
           "", "Units: keVnr = nuclear-recoil keV, keVee = electron-equivalent keV, PE = photoelectrons; "
           "\"observable's\" means the unit of `[detector] observable`; \"unit\" in a background rate is that unit.", ""]
    for t in TABLES:
        out += [f"## `{t.title}`", "", t.doc, "", "| key | type | unit | default | meaning |", "|---|---|---|---|---|"]
        for k in t.keys:
            doc = k.doc + (f" (one of {', '.join(repr(c) for c in k.choices)})" if k.choices else "")
            out.append(f"| `{k.name}` | {k.type} | {k.unit or '-'} | {_fmt_default(k)} | {doc.replace('|', '/')} |")
        out.append("")
    out += ["## Free tables", "",
            "* `[detector.time_pdfs]`: flux component name = arrival-time PDF file (pion DAR).",
            "* `[fit.priors]`: parameter name = `[\"uniform\", lo, hi]` | `[\"normal\", mu, sigma]` | ...; "
            "dotted names in quotes, e.g. `\"bkg.flat.rate\" = [\"uniform\", 0, 30]`.", "",
            "## Annotated example (`cevnsjax init`)", "", "```toml", TEMPLATE.rstrip(), "```", ""]
    return "\n".join(out)


#: What ``cevnsjax init PATH`` writes: a complete, runnable specification (no data folder needed).
TEMPLATE = '''\
# cevnsjax experiment specification, written by `cevnsjax init`. Every key: docs/spec.md.
# Run it:  cevnsjax predict THIS_FILE    free parameters:  cevnsjax params THIS_FILE
name = "my_reactor_ge"
description = "1 kg Ge, 20 m from a 3 GW reactor, 0.2 keVee threshold, 1 year"

[target]
formula = "Ge"              # chemical formula (natural abundances): "Ge", "CsI", "NaI", "CaWO4", ...
mass_kg = 1.0               # [kg]

[exposure]
live_days = 365.0           # [day]

[source]
type = "reactor"            # "reactor" | "pion_dar" | "tabulated"
power_GW = 3.0              # thermal power [GW]
distance_m = 20.0           # core-detector distance [m]
fission_fractions = "dayabay"
# low_energy_tables = true  # add the flux below 2 MeV (data folder); needed for thresholds reached by
                            # E_nu < 2 MeV: E_R < 0.12 keVnr in Ge, 0.37 keVnr in Na, 0.54 keVnr in O

[cross_section]
form_factor = "helm"        # "helm" | "klein_nystrand" | "symmetrized_fermi"
kinematics = "full"         # "full" | "standard"

[detector]
observable = "E_ee_keV"     # "E_R_keV" (keVnr) | "E_ee_keV" (keVee) | "PE"
bins = { start = 0.2, stop = 1.0, n = 40 }       # [keVee]; or edges = [...]
recoil_grid = { min_keV = 0.3, max_keV = 3.0, n_bins = 120, nodes_per_bin = 2 }   # [keVnr]

[detector.quenching]
model = "lindhard"          # a compound without Z, A: each nucleus with its own k(Z, A)
k = 0.157                   # fit parameter `k`

[detector.resolution]
model = "ge"                # sigma = sqrt(sigma_noise^2 + fano eps_pair E)
sigma_noise_keV = 0.0685    # [keVee]

[[background]]
type = "flat"
name = "flat"
rate = 10.0                 # [counts / (keVee kg day)]; fit parameter `bkg.flat.rate`

# [data]                    # observed counts: a registered loader and its path
# loader = "dresden_ii"
# path = "${CEVNSJAX_DATA}/dresden_ii"

[fit.priors]                # free in `cevnsjax fit`; `cevnsjax scan` profiles the nuisances (k, bkg.*)
signal_scale = ["uniform", 0.0, 5.0]
"bkg.flat.rate" = ["uniform", 0.0, 30.0]
k = ["normal", 0.157, 0.01]
'''
