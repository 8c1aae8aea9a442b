"""The ``r1h`` command line: ``main.py`` is the entry point; each subcommand is a module here, imported only when
invoked. Commands parse flags and call the layers; domain errors become click errors here only."""
