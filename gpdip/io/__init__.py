"""Input and output: paths to data, atomic writers, figures."""
