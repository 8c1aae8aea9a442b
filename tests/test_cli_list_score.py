"""``r1h list`` and ``r1h score`` through click's CliRunner, plus one real ``r1h`` subprocess (no torch import)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

import r1h
from r1h.harness.cli.main import main
from r1h.harness.core import plugins
from r1h.harness.core.hookspecs import hookimpl


class ExactMatch(r1h.Reward):
    """1.0 when the completion equals the gold answer (test reward)."""

    name = "exact_match"
    version = "3"
    columns = ("answer",)
    strip = True

    def param_names(self):
        return ("strip",)

    def score(self, completion, prompt=None, **row):
        if "answer" not in row:
            return None
        text = completion.strip() if self.strip else completion
        return float(text == str(row["answer"]))

    def extract(self, completion, prompt=None, **row):
        return completion.strip()


class Hanging(ExactMatch):
    """Isolated test reward that spins forever on "hang"."""

    name = "hanging"
    isolate = True

    def score(self, completion, prompt=None, **row):
        while completion == "hang":
            pass
        return super().score(completion, prompt, **row)


class _Plugin:
    @hookimpl
    def r1h_register_rewards(self, register):
        register("exact_match", f"{__name__}:ExactMatch", version="3", description="Exact match (test).")
        register("hanging", f"{__name__}:Hanging", version="1")

    @hookimpl
    def r1h_register_benchmarks(self, register):
        register("toy_bench", object(), version="2", description="A toy benchmark.")


@pytest.fixture
def with_test_plugins(monkeypatch):
    built = plugins.build(default_plugins=("r1h_missing_plugin_module",), load_entry_points=False,
                          extra_plugins=(_Plugin(),))
    monkeypatch.setattr(plugins, "_CURRENT", built)
    return built


@pytest.fixture
def runner():
    return CliRunner()


# -- r1h list -----------------------------------------------------------------------------------------------------
def test_list_json_shows_name_version_plugin_description(runner, with_test_plugins):
    result = runner.invoke(main, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["exact_match"]["version"] == "3"
    assert by_name["exact_match"]["plugin"] == "_Plugin"
    assert by_name["exact_match"]["description"] == "Exact match (test)."
    assert by_name["hanging"]["description"] == "Isolated test reward that spins forever on \"hang\"."
    assert by_name["toy_bench"]["kind"] == "benchmark"
    # the broken plugin is a warning naming it, on stderr, and the others are still listed
    assert "r1h_missing_plugin_module" in result.stderr and "warning" in result.stderr


def test_list_filters_by_kind(runner, with_test_plugins):
    result = runner.invoke(main, ["list", "rewards", "--json"])
    assert {r["kind"] for r in json.loads(result.stdout)} == {"reward"}
    result = runner.invoke(main, ["list", "benchmark", "--json"])
    assert [r["name"] for r in json.loads(result.stdout)] == ["toy_bench"]
    assert runner.invoke(main, ["list", "backends", "--json"]).stdout.strip() == "[]"
    assert runner.invoke(main, ["list", "models"]).exit_code == 2


def test_list_table(runner, with_test_plugins):
    result = runner.invoke(main, ["list", "rewards"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("exact_match", "hanging", "_Plugin", "Exact match (test).", "version"):
        assert text in result.stdout
    assert "toy_bench" not in result.stdout


# -- r1h score ----------------------------------------------------------------------------------------------------
def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_score_writes_every_row_back_and_reports_malformed_lines(runner, with_test_plugins, tmp_path):
    src = tmp_path / "runs.jsonl"
    _write(src, [
        json.dumps({"id": 1, "completion": " 25 ", "answer": "25"}),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"id": 4, "answer": "25"}),
        "",
        json.dumps({"id": 6, "completion": [{"role": "assistant", "content": "7"}], "answer": "25", "prompt": "q"}),
        json.dumps({"id": 7, "completion": "x\ud800", "answer": "25"}),
        json.dumps({"id": 8, "completion": "25"}),  # no gold: score None
    ])
    result = runner.invoke(main, ["score", "--reward", "exact_match", str(src), "--no-progress"])
    assert result.exit_code == 0, result.output
    out = _read(tmp_path / "runs.scored.jsonl")
    assert [r["id"] for r in out] == [1, 6, 7, 8]
    assert [r["score"] for r in out] == [1.0, 0.0, 0.0, None]
    assert [r["extracted"] for r in out] == ["25", "7", "x\ud800", "25"]
    assert all(r["timed_out"] is False for r in out)
    assert out[1]["completion"] == [{"role": "assistant", "content": "7"}]  # rows come back whole
    assert f"{src}:2: bad JSON" in result.stderr
    assert f"{src}:3: expected a JSON object" in result.stderr
    assert f"{src}:4: no 'completion' column" in result.stderr
    non_blank = [line for line in src.read_text().splitlines() if line.strip()]
    assert len(non_blank) == len(out) + 3  # nothing lost: rows in = rows out + skipped
    assert "mean 0.3333" in result.stdout and "count 4" in result.stdout
    assert "timeouts 0" in result.stdout and "skipped lines 3" in result.stdout


def test_score_refuses_to_overwrite_without_force(runner, with_test_plugins, tmp_path):
    src = tmp_path / "a.jsonl"
    _write(src, [json.dumps({"completion": "1", "answer": "1"})])
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n")
    result = runner.invoke(main, ["score", "--reward", "exact_match", str(src), "--output", str(out)])
    assert result.exit_code != 0 and "--force" in result.output
    assert out.read_text() == "keep me\n"
    result = runner.invoke(main, ["score", "--reward", "exact_match", str(src), "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert _read(out)[0]["score"] == 1.0


def test_score_unknown_reward_and_bad_params(runner, with_test_plugins, tmp_path):
    src = tmp_path / "a.jsonl"
    _write(src, [json.dumps({"completion": "1", "answer": "1"})])
    result = runner.invoke(main, ["score", "--reward", "exact_mach", str(src)])
    assert result.exit_code == 1
    assert "Unknown reward 'exact_mach'. Did you mean: exact_match?" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(main, ["score", "--reward", "exact_match", str(src), "--param", "nope=1"])
    assert result.exit_code == 1 and "no parameter(s) nope" in result.output
    result = runner.invoke(main, ["score", "--reward", "exact_match", str(src), "--param", "strip"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output  # a malformed flag: a usage error
    result = runner.invoke(main, ["score", "--reward", "exact_match", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_score_param_changes_the_reward(runner, with_test_plugins, tmp_path):
    src = tmp_path / "a.jsonl"
    _write(src, [json.dumps({"completion": " 1", "answer": "1"})])
    result = runner.invoke(main, ["score", "--reward", "exact_match", str(src), "--param", "strip=false",
                                  "--no-progress"])
    assert result.exit_code == 0, result.output
    assert _read(tmp_path / "a.scored.jsonl")[0]["score"] == 0.0


def test_score_times_out_a_runaway_item_with_the_budget_and_workers(runner, with_test_plugins, tmp_path):
    src = tmp_path / "a.jsonl"
    _write(src, [json.dumps({"completion": c, "answer": "1"}) for c in ["1", "hang", "1", "2"]])
    start = time.monotonic()
    result = runner.invoke(main, ["score", "--reward", "hanging", str(src), "--budget", "0.5", "--workers", "2"])
    assert time.monotonic() - start < 20
    assert result.exit_code == 0, result.output
    out = _read(tmp_path / "a.scored.jsonl")
    assert [r["score"] for r in out] == [1.0, 0.0, 1.0, 0.0]
    assert [r["timed_out"] for r in out] == [False, True, False, False]
    assert "timeouts 1" in result.stdout and "count 4" in result.stdout
    assert "grading" in result.stderr  # the progress bar
    assert runner.invoke(main, ["score", "--reward", "hanging", str(src), "--budget", "0", "--force"]).exit_code == 2


# -- one real process ---------------------------------------------------------------------------------------------
def test_real_r1h_help_and_list_do_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from r1h.harness.cli.main import main\n"
        "for args in (['--help'], ['list', '--json']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (args, exc.code)\n"
        "    heavy = sorted(m for m in ('torch', 'transformers', 'trl', 'datasets', 'vllm') if m in sys.modules)\n"
        "    print('HEAVY', args[0], heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Commands" in proc.stdout and "score" in proc.stdout and "list" in proc.stdout
    assert "HEAVY --help []" in proc.stderr
    assert "HEAVY list []" in proc.stderr


# -- r1h list: width, --wide, versions, reward columns ------------------------------------------------------------
def test_list_fits_100_columns_cuts_descriptions_and_wide_shows_them(runner):
    import r1h

    long_text = r1h.list_plugins("benchmark")
    countdown = next(r for r in long_text if r["name"] == "countdown")["description"]
    assert len(countdown) > 100  # the case that used to wrap
    result = runner.invoke(main, ["list"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    cut = next(line for line in lines if line.startswith("countdown "))
    assert cut.rstrip().endswith("…") and countdown not in result.stdout
    assert "answer or solution" in result.stdout  # math_accuracy's columns, in the narrow table too
    assert " - " not in result.stdout.replace("-'/'*", "")  # no version shown as "-"
    wide = runner.invoke(main, ["list", "--wide"], env={"COLUMNS": "100"})
    assert countdown in wide.stdout and "r1h.plugins.backends.gold" in wide.stdout
    assert "countdown (countdown_3to4)" in wide.stdout  # aliases in the wide view


def test_list_piped_without_columns_defaults_to_100(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "COLUMNS"}
    out = subprocess.run([sys.executable, "-m", "r1h.harness.cli.main", "list"], capture_output=True, text=True,
                         timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) == 100


def test_list_versions_are_never_missing_and_reward_columns_are_listed(runner):
    rows = json.loads(runner.invoke(main, ["list", "--json"]).stdout)
    assert all(r["version"] for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert by_name["gold"]["version"] == r1h.__version__  # registered without a version: r1h's own
    assert by_name["math_accuracy"]["required_columns"] == [["answer", "solution"]]
    assert by_name["cosine_length"]["optional_columns"] == ["completion_ids"]
    assert by_name["countdown_equation"]["required_columns"] == [["target"], ["nums"]]
    assert by_name["think_format"]["required_columns"] == []
    rewards = [r for r in rows if r["kind"] == "reward"]
    assert len(rewards) == 10 and all("required_columns" in r for r in rewards)


def test_plugin_without_a_version_shows_its_distribution_or_unversioned(with_test_plugins):
    from importlib import metadata

    from r1h.harness.cli.list import plugin_version

    assert plugin_version(with_test_plugins, "_Plugin") == "unversioned"  # defined in a test: no distribution

    class FromClick:  # a plugin object whose code lives in an installed distribution
        __module__ = "click.core"

    with_test_plugins.pm.register(FromClick(), name="from-click")
    assert plugin_version(with_test_plugins, "from-click") == metadata.version("click")


# -- r1h score: columns the reward reads ---------------------------------------------------------------------------
def test_score_refuses_a_file_without_the_rewards_columns(runner, tmp_path):
    src = tmp_path / "misnamed.jsonl"
    _write(src, [json.dumps({"completion": "\\boxed{3}", "gold": "3"}), json.dumps({"completion": "x", "gold": "4"})])
    result = runner.invoke(main, ["score", str(src), "--reward", "math_accuracy", "--no-progress"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: reward 'math_accuracy' reads column 'answer' or 'solution'; {src} has: completion, gold"]
    assert not (tmp_path / "misnamed.scored.jsonl").exists()
    result = runner.invoke(main, ["score", str(src), "--reward", "countdown_equation", "--no-progress"])
    assert result.exit_code == 1
    assert "reads columns 'target' and 'nums';" in result.output
    # a reward that reads no gold column scores the same file
    assert runner.invoke(main, ["score", str(src), "--reward", "think_format", "--no-progress"]).exit_code == 0


def test_score_warns_when_only_some_rows_lack_the_columns(runner, tmp_path):
    src = tmp_path / "mixed.jsonl"
    _write(src, [json.dumps({"completion": "\\boxed{3}", "solution": "\\boxed{3}"}),
                 json.dumps({"completion": "\\boxed{3}", "gold": "3"})])
    result = runner.invoke(main, ["score", str(src), "--reward", "math_accuracy", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "warning: 1 of 2 rows" in result.stderr
    assert [r["score"] for r in _read(tmp_path / "mixed.scored.jsonl")] == [1.0, None]


def test_score_help_states_the_real_default_output(runner, tmp_path):
    from r1h.harness.cli.score import default_output

    help_text = " ".join(runner.invoke(main, ["score", "--help"]).output.split())
    assert "data.jsonl -> data.scored.jsonl" in help_text
    assert default_output(tmp_path / "data.jsonl") == tmp_path / "data.scored.jsonl"


def test_score_skips_unreadably_deep_or_long_lines_naming_the_column(runner, tmp_path):
    src = tmp_path / "deep.jsonl"
    _write(src, [json.dumps({"completion": "\\boxed{3}", "answer": "3"}),
                 '{"completion": "x", "answer": ' + "[" * 100_000 + "]" * 100_000 + "}",
                 '{"completion": "x", "answer": ' + "9" * 5000 + "}"])
    result = runner.invoke(main, ["score", str(src), "--reward", "math_accuracy", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"warning: {src}:2: column 'answer' is nested too deeply to read (skipped)" in result.stderr
    assert f"warning: {src}:3: column 'answer' holds an integer of over 4300 digits (skipped)" in result.stderr
    assert [r["score"] for r in _read(tmp_path / "deep.scored.jsonl")] == [1.0]
