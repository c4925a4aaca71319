"""The finite network of an architecture and the Monte Carlo estimator of its kernel."""
