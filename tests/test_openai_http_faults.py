"""The openai backend against a raw-socket server on 127.0.0.1 that breaks HTTP in one way per test (tests/helpers/rawhttp.py).

Each fault ends as the RFCs say: an interim or bodyless answer is read past, an encoding is decoded, a transient fault
is retried (on a fresh connection), a fatal one is one line. Short timeouts and backoffs keep the module quick.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.rawhttp import RawServer

from r1h.harness.core.errors import ConfigError, R1HError
from r1h.harness.core.types import GenerationConfig, GenerationRequest
from r1h.plugins.backends.openai import BackendError, OpenAIBackend
from r1h.plugins.backends.openai_http import env_proxy

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def raw():
    servers = []

    def make(**kw) -> RawServer:
        servers.append(RawServer(**kw))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def _ask(server: RawServer, prompts: list[str], url: str | None = None, **args) -> list[str]:
    """The answers' texts, in prompt order, through ``backend.stream``."""
    options = {"retry_backoff": "0.01", "max_retries": "2", "timeout": "2", "deadline": "20", "concurrency": "1",
               **args}
    backend = OpenAIBackend(None, base_url=url or server.url, **options)
    try:
        requests = [GenerationRequest(f"p{i}", [{"role": "user", "content": q}], [0], [i])
                    for i, q in enumerate(prompts)]
        got = {g.request.id: g.completion.text for g in backend.stream(iter(requests), GenerationConfig(max_tokens=9))}
        return [got[f"p{i}"] for i in range(len(prompts))]
    finally:
        backend.close()


# ----- answered as the RFCs say: no retry, the connection kept -----


@pytest.mark.parametrize("mode", ["100", "103", "gzip", "deflate", "chunked", "chunked_trailers"])
def test_interim_encoded_and_chunked_answers_are_read_in_one_try(raw, mode):
    """RFC 9110 15.2 (1xx are interim), 8.4 (content codings), RFC 9112 7.1 (chunked, trailers): each answer is
    read on the first try and the connection stays in use for the next request."""
    server = raw()
    server.modes = [mode, mode, "ok"]
    assert _ask(server, ["a", "b", "c"]) == ["a|seed=0", "b|seed=1", "c|seed=2"]
    assert server.modes_used == [mode, mode, "ok"] and server.connections == 1


def test_204_has_no_body_and_keeps_the_connection(raw):
    """RFC 9112 6.3: a 204 ends at its header block. It is not a completion (no JSON), so it is retried, at once on
    the same connection: the client did not wait for a body or for the connection to close."""
    server = raw()
    server.modes = ["204"]
    assert _ask(server, ["a"], timeout="5") == ["a|seed=0"]
    assert server.modes_used == ["204", "ok"] and server.connections == 1
    assert server.times[1] - server.times[0] < 4  # not a try's full timeout


# ----- transient: retried on a fresh connection, then answered -----


@pytest.mark.parametrize("mode", ["two_lengths", "te_and_length", "endless_headers", "huge_header", "slowloris",
                                  "short_then_silence", "reset_mid_body", "html", "not_utf8", "bad_status", "empty",
                                  "429", "503"])
def test_transient_faults_are_retried(raw, mode):
    server = raw()
    server.modes = [mode]
    assert _ask(server, ["q"], timeout="1") == ["q|seed=0"]
    assert server.modes_used == [mode, "ok"]
    if mode in ("429", "503"):  # Retry-After: 1 was honoured (the backoff alone is 0.01 s)
        assert server.times[1] - server.times[0] >= 0.9


@pytest.mark.parametrize("mode", ["close_unannounced", "reset_after_good", "ok_close"])
def test_a_server_that_closes_after_a_good_answer(raw, mode):
    """``Connection: close`` sent or not, or a reset after the answer: every request is answered, none twice."""
    server = raw()
    server.modes = [mode] * 4
    assert _ask(server, list("abcdef")) == [f"{q}|seed={i}" for i, q in enumerate("abcdef")]
    assert server.connections >= 4


RETRIED = r"no answer for problem p1 after 2 tries \(last: http://127.0.0.1:\d+/v1: "


@pytest.mark.parametrize("mode, message", [
    ("two_lengths", RETRIED + r"bad response: Duplicate Content-Length"),
    ("te_and_length", RETRIED + r"bad response: Transfer-Encoding can't be present with Content-Length"),
    ("endless_headers", RETRIED + r"bad response: Too many headers received"),
    ("huge_header", RETRIED + r"bad response: Got more than 8190 bytes"),
    ("slowloris", RETRIED + r"Timeout: no complete answer within 1 s \(--backend-arg timeout\)"),
    ("short_then_silence", RETRIED + r"Timeout: no complete answer within 1 s"),
    ("reset_mid_body", RETRIED + r"(IncompleteRead|ClientOSError|ConnectionClosed|bad body)"),
    ("html", RETRIED + r"the body is not JSON"),
    ("not_utf8", RETRIED + r"the body is not UTF-8"),
    ("bad_status", RETRIED + r"bad response: Bad status line"),
    ("empty", RETRIED + r"ConnectionClosed: the server closed the connection without a complete answer"),
    ("503", RETRIED + r"HTTP 503: busy"),
    # fatal at once: retrying cannot help
    ("oversize", r"/v1/chat/completions: response body of 1048586 bytes is over the cap of 1048576 bytes"),
    ("oversize_stream", r"/v1/chat/completions: response body over the cap of 1048576 bytes \(--backend-arg max_body_mb"),
    ("gzip_bomb", r"/v1/chat/completions: response body over the cap of 1048576 bytes"),  # counted decoded
    ("list", r"/v1/chat/completions: malformed response for problem p1: the body is a JSON list, expected an object"),
    ("wrong_shape", r"malformed response for problem p1: choices\[0\].message is a str, expected an object"),
    ("content_number", r"malformed response for problem p1: choices\[0\].message.content is a int, expected a string"),
    ("hang", r"no answer for problem p1 within the 2 s deadline \(--backend-arg deadline\); servers: http"),
])
def test_a_fault_that_persists_is_one_line_and_earlier_samples_are_kept(raw, mode, message):
    """A transient fault is tried twice (``max_retries=1``), a fatal one once; either way the error is one line and
    the sample answered before it was yielded."""
    server = raw(then=mode)
    server.modes = ["ok"]
    backend = OpenAIBackend(None, base_url=server.url, retry_backoff="0.01", max_retries="1", concurrency="1",
                            max_body_mb="1", timeout="2" if mode == "hang" else "1",
                            deadline="2" if mode == "hang" else "60")
    requests = [GenerationRequest(f"p{i}", [{"role": "user", "content": q}], [0], [i]) for i, q in enumerate("ab")]
    kept = []
    with pytest.raises(BackendError, match=message) as info:
        for g in backend.stream(iter(requests), GenerationConfig(max_tokens=9)):
            kept.append(g.completion.text)
    backend.close()
    assert "\n" not in str(info.value) and isinstance(info.value, R1HError)
    assert kept == ["a|seed=0"]
    assert len(server.bodies) == (3 if message.startswith(RETRIED) else 2)


def test_max_completion_tokens_falls_back_once_per_server(raw):
    server = raw(then="reject_tokens_field")
    backend = OpenAIBackend(None, base_url=server.url, concurrency="1")
    requests = [GenerationRequest("a", [{"role": "user", "content": "q"}], [0, 1], [5, 6])]
    assert len(list(backend.stream(requests, GenerationConfig(max_tokens=9)))) == 2
    assert ["max_completion_tokens" in b for b in server.bodies] == [True, False, False]
    assert server.bodies[-1]["max_tokens"] == 9
    assert backend.describe()["server_adaptations"] == {f"{server.url}/v1": {"tokens_field": "max_tokens"}}
    backend.close()


def test_a_server_that_rejects_the_neutral_keys_gets_them_dropped(raw, capsys):
    server = raw(then="reject_extra")
    backend = OpenAIBackend(None, base_url=server.url, concurrency="2")
    requests = [GenerationRequest(f"p{i}", [{"role": "user", "content": "q"}], [0], [i]) for i in range(2)]
    assert len(list(backend.stream(requests, GenerationConfig(max_tokens=9)))) == 2
    assert "top_k" not in server.bodies[-1] and server.bodies[0]["top_k"] == -1
    assert capsys.readouterr().err.count("rejects top_k/min_p/repetition_penalty") == 1
    backend.close()


def test_the_deadline_bounds_a_request_over_all_its_tries(raw):
    server = raw(then="slowloris")
    with pytest.raises(BackendError, match=r"no answer for problem p0 within the 1.5 s deadline \(--backend-arg "
                                           r"deadline\); servers: http"):
        _ask(server, ["q"], timeout="1", deadline="1.5", max_retries="5")
    assert len(server.bodies) == 2  # the second try got what was left of the deadline


# ----- what users of HTTP libraries expect: proxies and TLS settings -----


def test_proxy_variables_are_honoured(monkeypatch, raw):
    """HTTP_PROXY sends the request to the proxy (here a server that answers itself), with the proxy's credentials;
    NO_PROXY exempts a host."""
    for key in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(key, raising=False)
    assert env_proxy("http://node1.invalid:8000/v1") == (None, None)
    proxy = raw()
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://user:pw@"))
    assert env_proxy("http://node1.invalid:8000/v1") == (proxy.url, ("user", "pw"))
    assert _ask(proxy, ["q"], url="http://node1.invalid:8000") == ["q|seed=0"]  # a host no resolver knows
    head = proxy.heads[0].decode()
    assert head.startswith("POST http://node1.invalid:8000/v1/chat/completions HTTP/1.1")  # absolute-form
    assert "Proxy-Authorization: Basic dXNlcjpwdw==" in head
    monkeypatch.setenv("NO_PROXY", "node1.invalid")
    assert env_proxy("http://node1.invalid:8000/v1") == (None, None)
    with pytest.raises(BackendError, match="node1.invalid"):
        _ask(proxy, ["q"], url="http://node1.invalid:8000", max_retries="0")
    assert len(proxy.bodies) == 1


def test_tls_arguments(tmp_path):
    with pytest.raises(ConfigError, match=r"--backend-arg ca_bundle=.*missing.pem: no such file"):
        OpenAIBackend(None, base_url="https://h", ca_bundle=str(tmp_path / "missing.pem"))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    backend = OpenAIBackend(None, base_url="https://h", ca_bundle=str(bad))
    with pytest.raises(ConfigError, match=r"--backend-arg ca_bundle=.*bad.pem: cannot load it"):
        list(backend.stream([GenerationRequest("a", [{"role": "user", "content": "q"}])], GenerationConfig()))
    assert OpenAIBackend(None, base_url="https://h", verify="false").verify is False
    with pytest.raises(ConfigError, match="--backend-arg timeout=0: must be > 0"):
        OpenAIBackend(None, base_url="https://h", timeout="0")


# ----- r1h eval end to end: one line, no traceback, no leftover task; the same command resumes -----


def _eval(url: str, data: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "r1h.harness.cli.main", "eval", "--backend", "openai", "--base-url", url, "--bench",
           "math500", "--data", f"math500={data}", "-n", "2", "--max-tokens", "16", "--output", str(out),
           "--no-progress", "--backend-arg", "concurrency=4", "--backend-arg", "max_retries=1", "--backend-arg",
           "retry_backoff=0.01", "--backend-arg", "timeout=5"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONWARNINGS": "default"})


def _stored(out: Path) -> list[tuple[str, int]]:
    keys = []
    for path in (out / "samples").glob("*.jsonl"):
        keys += [(r["id"], r["sample_index"]) for r in map(json.loads, path.read_text().splitlines())]
    return keys


def test_eval_through_a_server_that_drops_connections_mid_body(raw, tmp_path):
    """Ten runs: the server answers 5 requests, holds the next three without answering (so they are still in flight
    when the run fails) and resets every other connection in the middle of the body. stderr is the "writing" line and
    one error line, never a traceback or an asyncio complaint; what was graded stays; the same command then resumes
    and finishes."""
    data = tmp_path / "math500.jsonl"
    data.write_text("".join(json.dumps({"unique_id": f"t/{i}", "problem": f"What is {i}+0?", "answer": str(i)}) + "\n"
                            for i in range(8)))
    for run in range(10):
        server = raw(then="reset_mid_body", answer_text="The answer is \\boxed{1}.")
        server.modes = ["ok"] * 5 + ["reset_mid_body", "hang", "hang", "hang"]
        out = tmp_path / f"run{run}"
        done = _eval(server.url, data, out)
        assert done.returncode == 1, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        for bad in ("Traceback", "Task exception was never retrieved", "Task was destroyed", "Unclosed",
                    "never awaited"):
            assert bad not in done.stderr, done.stderr
        assert len(lines) == 2 and lines[0].startswith("r1h: writing ") and lines[1].startswith("Error: no answer for "
                                                                                            "problem t/"), done.stderr
        before = len(_stored(out))
        assert 1 <= before <= 5
    server.then, asked = "ok", len(server.bodies)  # the server recovers: the same command resumes the last run
    done = _eval(server.url, data, out)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr and "Traceback" not in done.stderr
    keys = _stored(out)
    assert sorted(keys) == sorted({(f"t/{i}", s) for i in range(8) for s in (0, 1)})
    assert len(server.bodies) - asked == 16 - before  # only what was missing was asked for
