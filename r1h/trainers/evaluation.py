"""Evaluation during training: every N optimizer steps, save the current weights and run ``r1h eval`` on them: the
same planning (the benchmark's protocol sampling: its n, the R1 defaults, its overrides), the same streaming pipeline
and the same metrics as the command line. The run directory is kept under ``OUTPUT_DIR/r1h-eval/step-N``, so
``r1h report`` reads it like any run, and the scalar metrics go through the trainer's ``log`` (so to every
``report_to`` integration: tensorboard, wandb, ...) as ``eval/<bench>/<metric>``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


def log_metrics(bench_name: str, metrics: dict[str, Any]) -> dict[str, float]:
    """``eval/<bench>/<name>`` for each number of a benchmark's ``results.json`` entry (``pass@k`` as ``pass@K``)."""
    flat: dict[str, Any] = {k: v for k, v in metrics.items() if k != "pass@k"}
    flat.update({f"pass@{k}": v for k, v in (metrics.get("pass@k") or {}).items()})
    return {f"eval/{bench_name}/{k}": float(v) for k, v in flat.items()
            if isinstance(v, int | float)}


def evaluate_checkpoint(
    checkpoint: str,
    bench_name: str,
    output: str,
    *,
    limit: int | None = 8,
    n: int | None = None,
    source: str | None = None,
    max_tokens: int | None = None,
    backend_name: str = "transformers",
    seed: int = 0,
) -> dict[str, Any]:
    """``r1h eval --model CHECKPOINT --bench BENCH --output OUTPUT`` with these flags; ``None`` means the benchmark's
    protocol value. Returns the benchmark's entry of ``results.json`` (the metrics ``r1h eval`` writes)."""
    from r1h.harness.eval.plan import EvalOptions
    from r1h.harness.eval.runner import run_eval

    opts = EvalOptions(model=checkpoint, bench=bench_name, backend=backend_name,
                       data={bench_name: source} if source else {}, limit=limit, n=n, max_tokens=max_tokens,
                       seed=seed, output=output, progress=False)
    results = run_eval(opts)
    return next(iter(results["benchmarks"].values()))


class EvalLogMixin:
    """Merges pending r1h evaluation metrics into the next ``log`` call of a TRL trainer."""

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        pending = getattr(self, "_r1h_pending_logs", None)
        if pending:
            logs.update(pending)
            pending.clear()
        super().log(logs, *args, **kwargs)


class BenchmarkEvalCallback(TrainerCallback):
    """Runs :func:`evaluate_checkpoint` every ``every`` steps (and at the end of training) and queues its numbers for
    the trainer's next ``log``. ``limit``, ``n`` and ``max_tokens``: ``None`` means the benchmark's protocol value."""

    def __init__(self, bench: str, every: int, *, limit: int | None = 8, n: int | None = None,
                 source: str | None = None, max_tokens: int | None = None, seed: int = 0):
        self.bench, self.every, self.source, self.seed = bench, every, source, seed
        self.limit, self.n, self.max_tokens = limit, n, max_tokens
        self.trainer = None
        self.history: list[tuple[int, dict[str, float]]] = []  # (step, what was logged)
        self._last_step = -1

    def attach(self, trainer) -> BenchmarkEvalCallback:
        self.trainer = trainer
        trainer._r1h_pending_logs = {}
        return self

    def run_dir(self, step: int) -> Path:
        """Where the evaluation of ``step`` is written: an ``r1h eval`` run directory."""
        return Path(self.trainer.args.output_dir) / "r1h-eval" / f"step-{step}"

    def _run(self, state, control) -> None:
        trainer = self.trainer
        if trainer is None or state.global_step == self._last_step:
            return
        self._last_step = state.global_step
        out = self.run_dir(state.global_step)
        weights = out.with_name(out.name + "-weights")  # beside the run: a run directory holds only run files
        trainer.save_model(str(weights))  # collective under DeepSpeed/FSDP: every process takes part
        if trainer.accelerator.is_main_process:
            shutil.rmtree(out, ignore_errors=True)  # a rerun into the same output_dir: new weights, never a resume
            if trainer.processing_class is not None:
                trainer.processing_class.save_pretrained(str(weights))
            was_training = trainer.model.training
            try:
                metrics = evaluate_checkpoint(str(weights), self.bench, str(out), limit=self.limit, n=self.n,
                                              source=self.source, max_tokens=self.max_tokens, seed=self.seed)
            finally:
                trainer.model.train(was_training)
                shutil.rmtree(weights, ignore_errors=True)
            logged = log_metrics(self.bench, metrics)
            self.history.append((state.global_step, logged))
            trainer._r1h_pending_logs.update(logged)
            print(f"r1h eval step {state.global_step}: {self.bench} pass@1 {metrics.get('pass@1')} "
                  f"({metrics.get('n_problems')} problems x {metrics.get('n_samples')} samples); run in {out}",
                  file=sys.stderr)
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
