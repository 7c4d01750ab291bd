"""The physics core: constants, nuclei, nuclear form factors, couplings, cross sections and the
:class:`~cevnsjax.physics.params.PhysicsParams` pytree. No I/O, no statistics."""
