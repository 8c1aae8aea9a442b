"""The machine a run runs on: its stack, ``r1h doctor``."""
