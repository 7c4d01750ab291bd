"""Detector response: quenching (Lindhard, modified Lindhard, tabulated), resolution, efficiency,
photoelectron statistics, arrival times, and backgrounds. Loaders of detector tables are in
:mod:`cevnsjax.io.detector_tables`."""
