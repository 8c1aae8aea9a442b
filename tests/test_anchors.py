"""``r1h check RUN --anchor NAME``: built-in published results, a third-party anchor registered through the
``r1h_register_anchors`` hook, and the verdict on runs the tests write (inside / outside the 95% CI, the settings
that differ and could explain a gap, settings the source does not record)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers.rundirs import write_run

import r1h
from r1h.harness.cli.main import main
from r1h.harness.core import plugins
from r1h.harness.core.anchor import SETTING_KEYS, Anchor, Published
from r1h.plugins import anchors as builtin

GENERATION = {"n": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 32768, "seed": 0}


def _run(path, correct: int, *, total: int = 500, generation=None, truncated_rate=0.0, bench="math500"):
    """A run with ``correct`` of ``total`` problems right (one sample each in the samples file), its generation
    config and truncated rate recorded as r1h eval records them."""
    problems = {f"p{i}": [i < correct] for i in range(total)}
    write_run(path, {bench: problems}, extra={bench: {"reward": "math_accuracy", "truncated_rate": truncated_rate}})
    results = json.loads((path / "results.json").read_text())
    results["config"] = {"benchmarks": {bench: {"generation": {**GENERATION, **(generation or {})}}}}
    results["complete"] = True
    (path / "results.json").write_text(json.dumps(results))
    return path


def test_every_builtin_anchor_cites_its_source_and_settings():
    names = {a.name for a in builtin.ANCHORS}
    assert {"r1-paper-distill-qwen-1.5b", "open-r1-distill-qwen-1.5b", "guide-qwen2.5-math-1.5b",
            "guide-stratos-sft-1epoch", "guide-distill-qwen-1.5b", "guide-countdown-before-grpo",
            "guide-countdown-grpo", "guide-r1v-before", "guide-r1v-grpo"} <= names
    for anchor in builtin.ANCHORS:
        assert r1h.get_anchor(anchor.name) is anchor
        assert len(anchor.source) > 40 and anchor.model
        for bench, published in anchor.results.items():
            assert 0.0 <= published.value <= 1.0
            assert set(anchor.settings_for(bench)) == set(SETTING_KEYS)
    paper = r1h.get_anchor("r1-paper-distill-qwen-1.5b")
    assert {b: p.value for b, p in paper.results.items()} == pytest.approx(
        {"aime24": 0.289, "math500": 0.839, "gpqa_diamond": 0.338})
    lighteval = r1h.get_anchor("open-r1-distill-qwen-1.5b")
    assert [lighteval.settings_for(b)["n"] for b in ("aime24", "math500", "gpqa_diamond")] == [64, 4, 8]
    assert lighteval.settings_for("math500")["max_tokens"] == 32768
    assert r1h.get_anchor("guide-countdown-grpo").results["countdown"].value == pytest.approx(59 / 500)
    assert r1h.get_anchor("guide-r1v-grpo").results["superclevr_counting"].value == pytest.approx(0.785)


def test_a_run_matching_the_anchor_is_inside_its_ci(tmp_path):
    run = _run(tmp_path / "ok", correct=416)  # 83.2% of 500: 83.1 is well inside
    res = CliRunner().invoke(main, ["check", str(run), "--anchor", "open-r1-distill-qwen-1.5b"])
    assert res.exit_code == 0, res.output
    assert "math500: published 83.10 is inside the run's 95% CI" in res.output
    assert "aime24: published 30.70; not in this run" in res.output
    assert "n:" not in res.output and "max_tokens:" not in res.output  # the same n and max tokens


def test_a_known_gap_names_the_settings_that_differ(tmp_path):
    """A run at 4,096 tokens, T=0.0, one sample, with a third of its samples cut off, scores 60%: far below 83.1."""
    run = _run(tmp_path / "gap", correct=300, generation={"n": 1, "temperature": 0.0, "max_tokens": 4096},
               truncated_rate=0.31)
    res = CliRunner().invoke(main, ["check", str(run), "--anchor", "open-r1-distill-qwen-1.5b", "--format", "json"])
    assert res.exit_code == 1, res.output
    row = next(r for r in json.loads(res.output)["anchors"][0]["rows"] if r["bench"] == "math500")
    assert row["inside"] is False and row["failed"] is True
    text = "\n".join(row["differences"])
    assert "n: run 1, anchor 4" in text
    assert "temperature: run 0.0, anchor 0.6" in text
    assert "max_tokens: run 4096, anchor 32768" in text
    assert "truncated rate: 31.0% of the run's samples hit max_tokens (4096)" in text
    assert "grader: run r1h's math_accuracy, anchor lighteval" in text
    assert "top_p" not in text  # the same top-p is not a difference


def test_settings_the_source_does_not_state_are_listed_as_not_recorded(tmp_path):
    run = _run(tmp_path / "g", correct=415)
    res = CliRunner().invoke(main, ["check", str(run), "--anchor", "guide-distill-qwen-1.5b"])
    assert "not recorded by the anchor: temperature, top_p" in res.output
    assert "n: run 4, anchor 1" in res.output


def test_the_r1_prompt_is_r1h_s_own_so_it_is_no_difference(tmp_path):
    run = _run(tmp_path / "p", correct=420)
    res = CliRunner().invoke(main, ["check", str(run), "--anchor", "r1-paper-distill-qwen-1.5b"])
    assert "prompt:" not in res.output and "grader: run r1h's math_accuracy" in res.output


def test_an_anchor_without_the_run_s_benchmarks_is_a_domain_error(tmp_path):
    run = _run(tmp_path / "x", correct=10)
    res = CliRunner().invoke(main, ["check", str(run), "--anchor", "guide-r1v-grpo"])
    assert res.exit_code == 1 and "has none of the run's benchmarks (math500)" in res.output
    res = CliRunner().invoke(main, ["check", str(run), "--anchor", "no-such-anchor"])
    assert res.exit_code == 1 and "Unknown anchor 'no-such-anchor'" in res.output
    res = CliRunner().invoke(main, ["check", str(run)])
    assert res.exit_code == 2 and "--baseline FILE or --anchor NAME" in res.output


class ThirdParty:
    @r1h.hookimpl
    def r1h_register_anchors(self, register):
        register("lab-model", Anchor("lab-model", "lab/model", "Lab report, Table 1",
                                     {"math500": Published(0.60)}, {"n": 4, "max_tokens": 4096}))


@pytest.fixture
def third_party():
    plugins._CURRENT = plugins.build(load_entry_points=False, extra_plugins=(ThirdParty(),))
    yield
    plugins.reset()


def test_a_third_party_plugin_registers_its_own_anchor(tmp_path, third_party):
    assert r1h.get_anchor("r1-paper-distill-qwen-1.5b")  # built-ins still there
    run = _run(tmp_path / "lab", correct=300, generation={"max_tokens": 4096})
    res = CliRunner().invoke(main, ["check", str(run), "--anchor", "lab-model"])
    assert res.exit_code == 0, res.output
    assert "math500: published 60.00 is inside" in res.output and "source: Lab report, Table 1" in res.output
