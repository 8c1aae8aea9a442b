"""Scripts that run INSIDE a foreign grader's own virtualenv (lighteval, lm-eval), as ``python SCRIPT`` with JSONL on
stdin and JSONL on stdout. They import only the standard library and the foreign package, never r1h.

Input line:  ``{"key": str, "benchmark": str, "completion": str, "row": {dataset row as on the hub}}``
Output: first ``{"key": "__meta__", "package": ..., "version": ...}``, then per input line
``{"key", "correct": bool | None, "extracted": str | None, "error": str | None, "metrics": {...}}``.
"""
