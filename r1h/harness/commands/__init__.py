"""Subcommands of the r1h CLI, one module each (imported only when invoked)."""
