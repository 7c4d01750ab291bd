"""Experiment presets: TOML specifications in this folder, and the data loaders they name.

``cevnsjax experiments`` lists the presets; ``cevnsjax.spec.load_preset(name)`` builds one. Each
module here registers its loader with :func:`cevnsjax.spec.register_loader`.
"""

from . import coherent_csi, coherent_lar, dresden_ii  # noqa: F401  (register loaders)
