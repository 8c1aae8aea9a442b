"""Progress: a live bar on a terminal whose counts survive 80 columns, plain lines in a log, and eval.log."""

from __future__ import annotations

import io
import re

from rich.console import Console

from r1h.harness.eval.progress import Display


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)


def test_three_benchmarks_on_an_80_column_terminal_keep_their_counts():
    buf = io.StringIO()
    display = Display(Console(file=buf, width=80, force_terminal=True), enabled=True)
    for name, total, done in [("math500", 2000, 2000), ("gpqa_diamond", 1584, 1584), ("countdown", 50000, 12345)]:
        with display.benchmark(name, total, 0, 0) as bar:
            bar.advance([{"correct": i % 2 == 0, "num_tokens": 300} for i in range(done)])
    display.close()
    final = _plain(buf.getvalue()).split("\r")[-1].splitlines()[-3:]  # the last frame: one row per benchmark
    assert [row.split()[0] for row in final] == ["math500", "gpqa_diamond", "countdown"]
    for row, count in zip(final, ["2000/2000", "1584/1584", "12345/50000"], strict=True):
        assert count in row and "pass@1 50.0%" in row and "tok/s" in row and "ETA" in row, final
        assert len(row) <= 80


def test_non_tty_lines_every_5_percent_or_30_seconds_and_eval_log(tmp_path):
    buf = io.StringIO()
    clock = FakeClock()
    log = tmp_path / "eval.log"
    display = Display(Console(file=buf, width=200), enabled=True, log_path=log, clock=clock)
    assert not display.live
    with display.benchmark("math500", 1000, 100, 50) as bar:  # resumed: 100 stored, 50 of them correct
        for _ in range(200):  # 200 samples, one per second: 5% steps (every 50) and 30 s intervals
            clock.now += 1.0
            bar.advance([{"correct": True, "num_tokens": 10}])
    display.close()
    lines = [line for line in buf.getvalue().splitlines() if line.startswith("r1h: math500")]
    # start, every 30 s (samples 130, 160, ..., 280) and every 5% (150, 200, 250, 300); the end showed 300 already
    done = [int(re.search(r"(\d+)/1000", line).group(1)) for line in lines]
    assert done == [100, 130, 150, 180, 200, 230, 250, 280, 300]
    assert lines[-1] == ("r1h: math500: 300/1000 samples (30%), elapsed 0:03:20, ETA 0:11:40, 10 tok/s, "
                         "pass@1 83.33%")
    logged = log.read_text().splitlines()
    assert len(logged) == len(lines) and logged[-1].endswith(lines[-1][len("r1h: "):])


def test_no_progress_still_logs(tmp_path):
    buf = io.StringIO()
    display = Display(Console(file=buf, width=200), enabled=False, log_path=tmp_path / "eval.log")
    with display.benchmark("b", 10) as bar:
        bar.advance([{"correct": False}] * 10)
    display.note("resuming x")
    display.close()
    assert "b: 10/10" not in buf.getvalue() and "resuming x" in buf.getvalue()
    text = (tmp_path / "eval.log").read_text()
    assert "b: 0/10 samples" in text and "b: 10/10 samples (100%)" in text and "resuming x" in text
