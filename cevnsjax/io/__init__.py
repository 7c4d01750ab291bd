"""Input and output: spec files, numeric tables, where the published data live, release loaders, presets.

Submodules: :mod:`~cevnsjax.io.spec` (TOML specification -> Experiment), :mod:`~cevnsjax.io.tables`
(numeric tables and YAML), :mod:`~cevnsjax.io.location` (the data folder), :mod:`~cevnsjax.io.releases`
(COHERENT and Dresden-II release loaders), :mod:`~cevnsjax.io.detector_tables` (QF, efficiency and
timing tables), :mod:`~cevnsjax.io.presets` (the shipped experiment presets and their data loaders).
This package imports none of them eagerly, so physics modules may read tables without cycles.
"""
