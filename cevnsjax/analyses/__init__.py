"""Ready-made likelihoods of the project's analyses (Dresden-II, COHERENT CsI, CICENNS), built from presets,
released data and the public API; the scripts in ``models/``, the notebooks and ``docs/make_results.py`` use them."""
