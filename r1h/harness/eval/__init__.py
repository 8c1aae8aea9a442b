"""``r1h eval``: plan, stream (generate -> grade -> store), metrics, report, progress."""
