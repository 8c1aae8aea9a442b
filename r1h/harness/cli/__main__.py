"""``python -m r1h.harness.cli``: the ``r1h`` command (the module path of the entry point before the layout of issue
19, kept working)."""

from r1h.harness.cli.main import main

if __name__ == "__main__":  # pragma: no cover
    main()
