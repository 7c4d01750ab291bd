"""Statistics on top of the rate engine: likelihoods, the joint NumPyro model, optimisation
(fit, profile, scan), NUTS sampling and flux unfolding."""
