"""The multimodal eval path for real: a tiny Qwen2-VL built from a config, SuperCLEVR-format prompts with drawn
images, `r1h eval --bench superclevr_counting` through the transformers backend (R1-V protocol: greedy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_superclevr_eval_with_a_tiny_qwen2_vl(tmp_path: Path):
    pytest.importorskip("transformers")
    from click.testing import CliRunner
    from PIL import Image, ImageDraw

    from r1h.harness.cli.main import main
    from r1h.trainers.tiny import build_vision_model

    model = build_vision_model(tmp_path / "tiny-vl")
    data = tmp_path / "superclevr"
    (data / "images").mkdir(parents=True)
    rows = []
    for i, count in enumerate((3, 5, 4)):
        image = Image.new("RGB", (64, 64), "white")
        draw = ImageDraw.Draw(image)
        for k in range(count):
            draw.rectangle((4 + 12 * k, 20, 12 + 12 * k, 28), fill="blue")
        image.save(data / "images" / f"img{i}.png")
        rows.append({"image_path": f"images/img{i}.png", "question": "How many blue cubes are there?",
                     "ground_truth": count})
    (data / "superclevr_test200_counting_problems.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "eval", "--model", str(model), "--bench", "superclevr_counting", "--data", f"superclevr_counting={data}",
        "--limit", "2", "--max-tokens", "6", "--output", str(out), "--no-progress",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    bench = json.loads((out / "results.json").read_text())["benchmarks"]["superclevr_counting"]
    assert bench["n_problems"] == 2 and bench["n_samples"] == 1  # R1-V protocol: greedy, one sample
    lines = [json.loads(x) for x in (out / "samples" / "superclevr_counting.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    assert all(0 < line["num_tokens"] <= 6 and line["reward"] in (0.0, 1.0) for line in lines)
    generation = json.loads((out / "run.json").read_text())["benchmarks"]["superclevr_counting"]["generation"]
    assert generation["temperature"] == 0.0 and generation["n"] == 1 and generation["max_tokens"] == 6
