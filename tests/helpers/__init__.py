"""Helpers shared by several test modules (no test module imports another test module): imported as
``from helpers.NAME import ...`` (pytest puts ``tests/`` on ``sys.path``; perf scripts insert it themselves).

- ``rundirs``: run directories in the ``r1h eval`` format, written without the runner (compare, check, regrade ...);
- ``evalfakes``: the fake benchmark, reward and deterministic backend of the eval runner and stream tests;
- ``rawhttp``: a raw-socket HTTP server on 127.0.0.1 that breaks HTTP in one way per test (the openai backend);
- ``choice_endings``: realistic GPQA-style endings (``choice_accuracy``; ``perf/choice_vs_lighteval.py``);
- ``adversarial_corpus``, ``hostile_corpus``: hostile completions for the grading budgets (``perf/budget_costs.py``);
- ``misbehaving``: the isolated reward that hangs, sleeps, dies or raises on request (the grading tests).
"""
