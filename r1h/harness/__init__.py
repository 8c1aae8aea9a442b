"""The r1h core: hooks, registries, data shapes, grading, metrics, storage and the runner. Never a concrete plugin."""
