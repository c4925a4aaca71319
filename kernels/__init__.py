"""The catalog of architectures (TOML files), installed as the data package ``gpdip.kernels``
(see gpdip/arch/catalog.py); this file only makes the folder a regular package."""
