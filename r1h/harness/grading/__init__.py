"""The batch grader: a pool of worker processes that run rewards with a hard per-item time budget."""
