"""Experiment presets: TOML specifications in this folder, and the data loaders they name.

``cevnsjax experiments`` lists the presets; ``cevnsjax.io.spec.load_preset(name)`` builds one. Each
module here registers its loader with :func:`cevnsjax.io.registry.register_loader`.
"""

from cevnsjax.io.presets import coherent_csi, coherent_lar, dresden_ii  # noqa: F401  (register loaders)
