"""The gold chain on real data: each benchmark's registered reward scores its own reference completion 1.0 on EVERY
problem of the real reference copies (MATH-500, AIME 2024 twice, Countdown rows, SuperCLEVR prompts with drawn images).

This is what ``r1h eval --backend gold`` must turn into pass@1 = 100%; a failure names the problems that break it.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

import r1h


def assert_gold_perfect(bench, samples, expected_count: int) -> None:
    assert len(samples) == expected_count
    reward = r1h.get_reward(bench.reward)
    failures = []
    for sample in samples:
        verdict = reward.grade_one(bench.reference_completion(sample), bench.prompt(sample), sample.columns)
        if verdict.score != 1.0:
            failures.append((sample.id, sample.columns, verdict))
    assert not failures, f"{len(failures)}/{len(samples)} gold references not scored 1.0: {failures[:5]}"


def test_gold_math500(refdata):
    bench = r1h.get_benchmark("math500")
    samples = bench.load(str(refdata / "math500" / "test.jsonl"))
    assert len({s.id for s in samples}) == 500 and samples[0].id == "test/precalculus/807.json"
    assert_gold_perfect(bench, samples, 500)


@pytest.mark.parametrize("file", ["test.jsonl", "limo_aime_test.jsonl"])
def test_gold_aime24(refdata, file):
    bench = r1h.get_benchmark("aime24")
    samples = bench.load(str(refdata / "aime24" / file))
    assert [s.id for s in samples] == [str(i) for i in range(60, 90)]
    assert_gold_perfect(bench, samples, 30)


def test_gold_aime24_clone_dir_reads_test_jsonl(refdata):
    bench = r1h.get_benchmark("aime24")
    samples = bench.load(str(refdata / "aime24"))  # test.jsonl, not limo_aime_test.jsonl
    direct = bench.load(str(refdata / "aime24" / "test.jsonl"))
    assert [s.columns for s in samples] == [s.columns for s in direct]
    assert any(s.columns["answer"].startswith("0") for s in samples)  # the zero-padded copy
    assert_gold_perfect(bench, samples, 30)


def test_gold_countdown_rows(refdata, tmp_path):
    """The first 500 real rows plus every 50th row after them (a solver equation for each; all rows are solvable)."""
    src = refdata / "countdown" / "countdown_tasks_3to4_rows_00000-11023.derived.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    picked = rows[:500] + rows[500::50]
    path = tmp_path / "countdown.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in picked), encoding="utf-8")
    bench = r1h.get_benchmark("countdown")
    samples = bench.load(str(path))
    assert samples[0].columns == {"target": rows[0]["target"], "nums": rows[0]["nums"]}
    assert_gold_perfect(bench, samples, len(picked))


def test_gold_countdown_builtin_generator():
    bench = r1h.get_benchmark("countdown")
    assert_gold_perfect(bench, bench.load(), 500)


def write_superclevr_folder(refdata: Path, folder: Path) -> Path:
    """R1-V's 200 prompts plus a drawn picture (ground_truth dots) at each image_path: a complete data source."""
    from PIL import Image, ImageDraw

    prompts = refdata / "superclevr" / "superclevr_test200_counting_problems.jsonl"
    rows = [json.loads(line) for line in prompts.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        image = Image.new("RGB", (32, 32), "white")
        draw = ImageDraw.Draw(image)
        for k in range(int(row["ground_truth"])):
            draw.ellipse((3 * k, 3 * k, 3 * k + 2, 3 * k + 2), fill="red")
        target = folder / row["image_path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target)
    shutil.copyfile(prompts, folder / prompts.name)
    return folder


def test_gold_superclevr_with_drawn_images(refdata, tmp_path):
    bench = r1h.get_benchmark("superclevr_counting")
    samples = bench.load(str(write_superclevr_folder(refdata, tmp_path)))
    assert all(Path(s.images[0]).is_file() for s in samples)
    assert_gold_perfect(bench, samples, 200)


def write_gpqa_csv(path: Path, rows: int = 60) -> Path:
    """GPQA Diamond is not redistributed (its authors' request): a file in its schema checks the chain."""
    fields = ["Record ID", "Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
              "Incorrect Answer 3"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for i in range(rows):
            writer.writerow({"Record ID": f"rec{i}", "Question": f"Which value is option {i}? Is it (A) or (B)?",
                             "Correct Answer": f"{i} kJ", "Incorrect Answer 1": f"{i + 1} kJ",
                             "Incorrect Answer 2": f"{i + 2} kJ", "Incorrect Answer 3": "None of the above (D)"})
    return path


def test_gold_gpqa_on_a_written_csv(tmp_path):
    bench = r1h.get_benchmark("gpqa_diamond")
    assert_gold_perfect(bench, bench.load(str(write_gpqa_csv(tmp_path / "gpqa_diamond.csv"))), 60)


def test_r1h_eval_gold_backend_scores_100_percent_on_real_data(refdata, tmp_path):
    """The whole chain through the CLI: `r1h eval --backend gold --bench all` on the real reference copies."""
    from click.testing import CliRunner

    from r1h.harness.cli.main import main

    countdown = tmp_path / "countdown.jsonl"
    src = refdata / "countdown" / "countdown_tasks_3to4_rows_00000-11023.derived.jsonl"
    countdown.write_text("".join(src.read_text(encoding="utf-8").splitlines(keepends=True)[:500]), encoding="utf-8")
    data = {
        "math500": refdata / "math500" / "test.jsonl",
        "aime24": refdata / "aime24" / "test.jsonl",
        "gpqa_diamond": write_gpqa_csv(tmp_path / "gpqa_diamond.csv"),
        "countdown": countdown,
        "superclevr_counting": write_superclevr_folder(refdata, tmp_path / "superclevr"),
    }
    out = tmp_path / "run"
    args = ["eval", "--backend", "gold", "--bench", "all", "-n", "1", "--output", str(out), "--no-progress"]
    for name, path in data.items():
        args += ["--data", f"{name}={path}"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    benchmarks = json.loads((out / "results.json").read_text())["benchmarks"]
    expected = {"math500": 500, "aime24": 30, "gpqa_diamond": 60, "countdown": 500, "superclevr_counting": 200}
    assert {name: b["n_problems"] for name, b in benchmarks.items()} == expected
    assert {name: b["pass@1"] for name, b in benchmarks.items()} == {name: 1.0 for name in expected}
    assert all(b["timeouts"] == 0 for b in benchmarks.values())
