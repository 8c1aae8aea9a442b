"""Offline and missing data, all at once (issue 11 item 4): `r1h eval --bench all` resolves every benchmark's data
before any backend exists, lists every missing source with its --data flag in one error, and an unreachable hub
costs one bounded probe instead of huggingface_hub's retry loop."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from r1h.harness.data import hub

ALL = ("aime24", "math500", "gpqa_diamond", "countdown", "superclevr_counting")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed when the with-block ends: connections are refused


def r1h_eval(tmp_path: Path, *args: str, offline: bool = False, endpoint: str | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_ENDPOINT")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_ENDPOINT=endpoint or f"http://127.0.0.1:{closed_port()}")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    cmd = [sys.executable, "-m", "r1h.harness.cli.main", "eval", "--bench", "all", "--output", str(tmp_path / "run"),
           "--no-progress", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)


def assert_lists_all_five(result, *names_reason: str) -> list[str]:
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert "Traceback" not in err and "Retry" not in err and "Retrying" not in err
    assert sum(line.startswith("Error:") for line in err.splitlines()) == 1 and err.startswith("Error: data for 5 of 5 benchmarks could not be loaded")
    lines = err.strip().splitlines()
    for name in ALL:
        assert sum(1 for line in lines if line.startswith(f"  {name}")) == 1, (name, err)
    flags = next(line for line in lines if line.startswith("pass: "))
    assert flags == ("pass: --data aime24=PATH --data math500=PATH --data gpqa_diamond=PATH --data countdown=PATH "
                     "--data superclevr_counting=DIR")
    for reason in names_reason:
        assert reason in err
    assert not (Path(result.args[result.args.index("--output") + 1]) / "samples").exists()
    return lines


@pytest.mark.slow
def test_unreachable_hub_lists_every_missing_source_once_for_gold_and_a_real_backend(tmp_path):
    gold = r1h_eval(tmp_path, "--backend", "gold", "--data", "countdown=hub")
    lines = assert_lists_all_five(gold, "the hub cannot be reached; pass --data aime24=PATH")
    assert lines[-1].startswith("the hub at http://127.0.0.1:") and "Connection refused" in lines[-1]
    assert "set HF_HUB_OFFLINE=1" in lines[-1]
    # a real backend with a model that does not exist: the data report comes first, identical, no model is loaded
    real = r1h_eval(tmp_path, "--backend", "transformers", "--model", str(tmp_path / "no-such-model"),
                    "--data", "countdown=hub")
    assert_lists_all_five(real)
    strip_port = [line.split("127.0.0.1:")[0] for line in real.stderr.splitlines()]
    assert strip_port == [line.split("127.0.0.1:")[0] for line in gold.stderr.splitlines()]


@pytest.mark.slow
def test_offline_mode_with_an_empty_cache_lists_every_benchmark(tmp_path):
    result = r1h_eval(tmp_path, "--backend", "gold", "--data", "countdown=hub", offline=True)
    lines = assert_lists_all_five(result, "aime24: hub dataset HuggingFaceH4/aime_2024 split 'train' is not in the "
                                          "local cache (HF_HUB_OFFLINE is set")
    assert not any("cannot be reached" in line for line in lines)  # nothing was probed


def test_bad_local_data_and_missing_hub_data_are_reported_together(tmp_path, unreachable_hub):
    from click.testing import CliRunner

    from r1h.harness.cli.main import main

    bad = tmp_path / "math.jsonl"
    bad.write_text('{"problem": "p", "answer": null}\n')
    result = CliRunner().invoke(main, ["eval", "--backend", "gold", "--bench", "math500,aime24,countdown",
                                       "--data", f"math500={bad}", "--output", str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == "Error: data for 2 of 3 benchmarks could not be loaded (no model was loaded):"
    assert lines[1] == f"  math500: {bad}:1: column 'answer' is null (expected a string or number)"
    assert lines[2].startswith("  aime24: hub dataset HuggingFaceH4/aime_2024: the hub cannot be reached;")
    assert lines[3] == "pass: --data math500=PATH --data aime24=PATH"


class _Answering(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):  # noqa: N802 - http.server's naming
        self.send_response(404)  # any answer means reachable
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _answering_once():
    """A loopback HTTP server that answers exactly one request; yields its port."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Answering)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        thread.join(10)
        server.server_close()


def test_probe_answers_reachable_for_any_http_status_and_times_out_on_silence(monkeypatch):
    with _answering_once() as port:
        assert hub.unreachable_reason(f"http://127.0.0.1:{port}", timeout=5) is None
    with socket.socket() as silent:  # accepts the connection (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        reason = hub.unreachable_reason(url, timeout=0.5)
    assert reason is not None and ("timed out" in reason.lower() or "no answer" in reason)
    assert hub.unreachable_reason(url) == reason  # cached: probed once per process
    hub.forget()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.require_hub("x")  # offline mode: nothing probed, nothing raised
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(hub.HubUnreachableError, match=r"^x: the hub at http://127\.0\.0\.1:\d+ cannot be reached"):
        hub.require_hub("x")
    hub.forget()


def test_probe_counts_a_tls_answer_as_reachable_and_can_be_turned_off(monkeypatch):
    with _answering_once() as port:  # plain HTTP: a TLS handshake to it fails
        assert hub.unreachable_reason(f"https://127.0.0.1:{port}", timeout=5) is None
    monkeypatch.setenv("R1H_HUB_PROBE_S", "0")
    assert hub.unreachable_reason(f"http://127.0.0.1:{closed_port()}") is None  # not probed
    hub.forget()
