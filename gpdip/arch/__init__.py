"""The data model: architectures, their TOML front end and the catalog.

Imports nothing from the algorithms (compiler, finite network, GP engine).
"""
