"""Logs a team can read (issue 18, items 7-10): a heartbeat line while no sample finishes, the last progress line
once, the reason a run stopped in eval.log, and no library progress bars or FutureWarnings in a log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1h.harness.cli.main import main
from r1h.harness.core import plugins
from r1h.harness.core.errors import RunError
from r1h.harness.core.hookspecs import hookimpl
from r1h.plugins.backends.gold import GoldBackend


class SlowGold(GoldBackend):
    """The gold answers, after a silence: with ``wait_for`` set, no sample comes until ``log`` holds that many
    "0/" progress lines (at most 30 s: a long first trace, with the heartbeat as the only sign of life)."""

    name = "slow_gold"
    log: Path | None = None
    wait_for = 3
    fail_after = None  # raise after this many samples
    interrupt_after = None

    def stream(self, requests, config) -> Iterator:
        deadline = time.monotonic() + 30
        while self.wait_for and time.monotonic() < deadline:
            text = self.log.read_text() if self.log is not None and self.log.exists() else ""
            if text.count("countdown: 0/") >= self.wait_for:
                break
            time.sleep(0.05)
        for count, generated in enumerate(super().stream(requests, config)):
            if self.fail_after is not None and count == self.fail_after:
                raise RunError("slow_gold: the engine died")
            if self.interrupt_after is not None and count == self.interrupt_after:
                raise KeyboardInterrupt
            yield generated


class _Plugin:
    @hookimpl
    def r1h_register_backends(self, register):
        register("slow_gold", SlowGold)


@pytest.fixture
def slow(monkeypatch):
    plugins._CURRENT = plugins.build(extra_plugins=(_Plugin(),), load_entry_points=False)
    monkeypatch.setenv("R1H_PROGRESS_INTERVAL_S", "0.2")
    yield SlowGold
    SlowGold.log, SlowGold.wait_for, SlowGold.fail_after, SlowGold.interrupt_after = None, 3, None, None


def _eval(tmp_path, *extra):
    out = tmp_path / "run"
    SlowGold.log = out / "eval.log"
    res = CliRunner().invoke(main, ["eval", "--backend", "slow_gold", "--bench", "countdown", "--limit", "2", "-n",
                                    "1", "--output", str(out), *extra])
    return res, out / "eval.log"


def test_heartbeat_while_no_sample_finishes(slow, tmp_path):
    res, log = _eval(tmp_path)
    assert res.exit_code == 0, res.output
    waiting = [line for line in log.read_text().splitlines() if "countdown: 0/2 samples" in line]
    assert len(waiting) >= 3, log.read_text()  # the first line, then heartbeats while the backend is silent
    assert sum("countdown: 0/2 samples" in line for line in res.output.splitlines()) >= 3, res.output


def test_heartbeat_reaches_eval_log_with_no_progress(slow, tmp_path):
    res, log = _eval(tmp_path, "--no-progress")
    assert res.exit_code == 0, res.output
    assert sum("countdown: 0/2 samples" in line for line in log.read_text().splitlines()) >= 3
    assert "0/2 samples" not in res.output


def test_heartbeat_default_is_30_seconds(monkeypatch):
    from r1h.harness.eval.progress import line_interval

    monkeypatch.delenv("R1H_PROGRESS_INTERVAL_S", raising=False)
    assert line_interval() == 30.0
    monkeypatch.setenv("R1H_PROGRESS_INTERVAL_S", "junk")
    assert line_interval() == 30.0


def test_last_progress_line_printed_once(slow, tmp_path):
    slow.wait_for = 0
    res, log = _eval(tmp_path)
    assert res.exit_code == 0, res.output
    assert sum("2/2 samples (100%)" in line for line in log.read_text().splitlines()) == 1, log.read_text()
    assert sum("2/2 samples (100%)" in line for line in res.output.splitlines()) == 1, res.output


def test_tool_progress_last_line_once(tmp_path):
    from io import StringIO

    from rich.console import Console

    from r1h.harness.eval.progress import live_count

    buf = StringIO()
    with live_count("regrade x", 20, unit="verdicts", console=Console(file=buf, width=200)) as count:
        for _ in range(20):
            count.count(1)
    assert sum("20/20 verdicts" in line for line in buf.getvalue().splitlines()) == 1, buf.getvalue()


def test_eval_log_says_done(slow, tmp_path):
    slow.wait_for = 0
    res, log = _eval(tmp_path, "--no-progress")
    assert res.exit_code == 0, res.output
    assert "stopped: done" in log.read_text().splitlines()[-1]


def test_eval_log_says_error(slow, tmp_path):
    slow.wait_for, slow.fail_after = 0, 1
    res, log = _eval(tmp_path, "--no-progress")
    assert res.exit_code == 1, res.output
    assert "stopped: error: slow_gold: the engine died" in log.read_text().splitlines()[-1]


def test_eval_log_says_interrupt(slow, tmp_path):
    slow.wait_for, slow.interrupt_after = 0, 1
    res, log = _eval(tmp_path, "--no-progress")
    assert res.exit_code == 130, res.output
    assert "stopped: interrupt" in log.read_text().splitlines()[-1]


def test_quiet_loading_silences_library_bars_and_future_warnings(capsys):
    import transformers.modeling_gguf_pytorch_utils as gguf
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    from r1h.plugins.backends.models import quiet_loading

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_loading():
            for _ in gguf.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
                pass
            for _ in hf_logging.tqdm(range(3), desc="Loading weights"):
                pass
            warnings.warn("`foo` is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("after", FutureWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert "Converting" not in err and "Loading weights" not in err
    assert [str(w.message) for w in caught] == ["after"]
    assert gguf.tqdm is tqdm and hf_logging.is_progress_bar_enabled()  # restored


@pytest.mark.slow
def test_gguf_eval_log_has_no_progress_bars(smollm2, tmp_path):
    """The real default model (a GGUF converted on load) in a non-TTY run: only r1h's lines."""
    env = {**os.environ, "R1H_PROGRESS_INTERVAL_S": "5"}
    res = subprocess.run([sys.executable, "-m", "r1h.harness.cli.main", "eval", "--bench", "countdown", "--limit", "1", "-n",
                          "1", "--max-tokens", "4", "--output", str(tmp_path / "run")], capture_output=True, text=True,
                         env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "Converting and de-quantizing" not in res.stderr and "it/s]" not in res.stderr, res.stderr
    assert "FutureWarning" not in res.stderr
