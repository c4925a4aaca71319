"""Experiment drivers: sweeps, the paper's tables, the dense reference, plots."""
