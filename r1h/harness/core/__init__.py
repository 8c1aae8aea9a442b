"""The contracts every plugin and layer shares: hooks, registries, data shapes, errors and base classes."""
