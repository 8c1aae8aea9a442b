"""The batch grader: a pool of worker processes that run rewards with a hard per-item time budget.

- :mod:`~r1h.harness.grading.pool`: :func:`grade`, :class:`GradingPool`, the shared pool; owns the processes.
- :mod:`~r1h.harness.grading.batch`: one batch on a pool: dispatch, deadlines, kills, input order.
- :mod:`~r1h.harness.grading.budget`: the per-item budget, the pool size, the memory cap.
- :mod:`~r1h.harness.grading.launch`: starting a worker; the pool's handle on one (a subprocess or a forked child).
- :mod:`~r1h.harness.grading.zygote`: the warm process that forks replacement workers (Linux).
- :mod:`~r1h.harness.grading.protocol`: the messages between pool and workers, as types.
- :mod:`~r1h.harness.grading.worker`: what runs inside a worker (and the zygote).
- :mod:`~r1h.harness.grading.fallback`: bounded threads for a reward no worker can take.

``import r1h`` registers :func:`r1h.harness.grading.pool.grade` as what ``Reward.__call__`` grades through
(:func:`r1h.harness.core.reward.use_batch_grader`), so the core never imports the grader.
"""
