"""``Misbehaving``: the isolated test reward of the grading tests (test_grading.py, test_budgets.py), importable by
the grading workers and by a test's child process (with ``tests/`` on ``sys.path``)."""

from __future__ import annotations

import gc
import os
import time

import r1h
from r1h.harness.grading.worker import in_worker


class Misbehaving(r1h.Reward):
    """Isolated test reward: "hang" spins forever, "sleep" sleeps, "die" kills its process, "raise" raises, "where"
    reports whether it runs inside a grading worker, "frozen" whether its heap came frozen (gc.freeze) from a zygote;
    anything else scores 1.0 when it equals the gold answer."""

    name = "misbehaving"
    columns = ("answer",)
    isolate = True

    def score(self, completion, prompt=None, **row):
        if completion == "hang":
            while True:
                pass
        if completion == "sleep":
            time.sleep(3600)
        if completion == "die":
            os._exit(3)
        if completion == "raise":
            raise ValueError("broken item")
        if completion == "where":
            return 1.0 if in_worker() else 0.0
        if completion == "frozen":  # forked from a zygote that froze its heap out of the collector's way
            return 1.0 if gc.get_freeze_count() > 0 else 0.0
        return float(completion == str(row.get("answer")))

    def extract(self, completion, prompt=None, **row):
        return completion[:20]
