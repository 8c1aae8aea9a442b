"""Evaluation during training: every N optimizer steps, save the current weights, run an r1h benchmark on them with
the transformers backend and a small limit, and log ``eval/<bench>/pass@1`` into the trainer's logs."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


def evaluate_checkpoint(
    checkpoint: str,
    bench_name: str,
    *,
    limit: int = 8,
    source: str | None = None,
    max_tokens: int | None = None,
    backend_name: str = "transformers",
    seed: int = 0,
) -> dict[str, float]:
    """pass@1 (greedy, one sample) of ``checkpoint`` on the first ``limit`` problems of ``bench_name``.

    Uses only the public API: the benchmark's prompts and reward, the registered backend, the reward's batch grader.
    """
    import r1h
    from r1h.harness.types import GenerationConfig, sample_seed

    bench = r1h.get_benchmark(bench_name)
    samples = bench.load(source, limit=limit)[:limit]
    if not samples:
        return {f"eval/{bench_name}/pass@1": 0.0, f"eval/{bench_name}/n": 0.0}
    settings: dict[str, Any] = {"n": 1, "temperature": 0.0, "top_p": 1.0, "seed": seed, "max_tokens": 512}
    settings.update(getattr(bench, "generation_overrides", None) or {})
    settings["n"], settings["temperature"] = 1, 0.0
    if max_tokens:
        settings["max_tokens"] = int(max_tokens)
    config = GenerationConfig(**{k: v for k, v in settings.items() if k in GenerationConfig.__dataclass_fields__})
    requests = [bench.request(s, [0], [sample_seed(seed, s.id, 0)]) for s in samples]
    backend = r1h.get_backend(backend_name, model=checkpoint)
    try:
        outputs = backend.generate(requests, config)
    finally:
        backend.close()
    reward = r1h.get_reward(bench.reward)
    texts = [out[0].text if out else "" for out in outputs]
    prompts = [req.messages for req in requests]
    columns: dict[str, list[Any]] = {}
    for s in samples:
        for key in s.columns:
            columns.setdefault(key, [])
    for key in columns:
        columns[key] = [s.columns.get(key) for s in samples]
    scores = reward(texts, prompts=prompts, **columns)
    graded = [s for s in scores if s is not None]
    value = sum(graded) / len(graded) if graded else 0.0  # greedy, one sample: pass@1 is the mean score
    return {f"eval/{bench_name}/pass@1": value, f"eval/{bench_name}/n": float(len(graded))}


class EvalLogMixin:
    """Merges pending r1h evaluation metrics into the next ``log`` call of a TRL trainer."""

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        pending = getattr(self, "_r1h_pending_logs", None)
        if pending:
            logs.update(pending)
            pending.clear()
        super().log(logs, *args, **kwargs)


class BenchmarkEvalCallback(TrainerCallback):
    """Runs :func:`evaluate_checkpoint` every ``every`` steps (and at the end of training)."""

    def __init__(self, bench: str, every: int, *, limit: int = 8, source: str | None = None,
                 max_tokens: int | None = None):
        self.bench, self.every, self.limit, self.source, self.max_tokens = bench, every, limit, source, max_tokens
        self.trainer = None
        self.history: list[tuple[int, dict[str, float]]] = []
        self._last_step = -1

    def attach(self, trainer) -> BenchmarkEvalCallback:
        self.trainer = trainer
        trainer._r1h_pending_logs = {}
        return self

    def _run(self, state, control) -> None:
        trainer = self.trainer
        if trainer is None or state.global_step == self._last_step:
            return
        self._last_step = state.global_step
        tmp = Path(trainer.args.output_dir) / f"r1h-eval-step-{state.global_step}"
        trainer.save_model(str(tmp))  # collective under DeepSpeed/FSDP: every process takes part
        if trainer.accelerator.is_main_process:
            if trainer.processing_class is not None:
                trainer.processing_class.save_pretrained(str(tmp))
            was_training = trainer.model.training
            try:
                metrics = evaluate_checkpoint(str(tmp), self.bench, limit=self.limit, source=self.source,
                                              max_tokens=self.max_tokens)
            finally:
                trainer.model.train(was_training)
                shutil.rmtree(tmp, ignore_errors=True)
            self.history.append((state.global_step, metrics))
            trainer._r1h_pending_logs.update(metrics)
            print(f"r1h eval step {state.global_step}: {metrics}", file=sys.stderr)
            control.should_log = True
        trainer.accelerator.wait_for_everyone()

    def on_step_end(self, args, state, control, **kwargs):
        if self.every and state.global_step % self.every == 0:
            self._run(state, control)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.every and self._last_step != state.global_step:
            self._run(state, control)
            if self.trainer is not None and self.trainer._r1h_pending_logs:
                self.trainer.log({})
        return control
