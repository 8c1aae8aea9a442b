"""The five built-in benchmarks and the gold backend: names, byte-exact prompts, ids, shuffles, generator, slicing."""

from __future__ import annotations

import ast
import csv
import json
import random
from fractions import Fraction
from pathlib import Path

import pytest

import r1h
from r1h.harness.core.errors import ConfigError, DataError, RunError
from r1h.harness.core.types import GenerationConfig, GenerationRequest

# The reference prompts, spelled out here independently of the code (DESIGN.md, "Prompts of the reference systems").
R1_MATH_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."
MINI_R1_SYSTEM = (
    "You are a helpful assistant. You first thinks about the reasoning process in the mind and then provides the user "
    "with the answer."
)
MINI_R1_USER = (
    "Using the numbers [44, 19, 35], create an equation that equals 98. You can use basic arithmetic operations "
    "(+, -, *, /) and each number can only be used once. Show your work in <think> </think> tags. And return the "
    "final equation and answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 = 1 </answer>."
)
MINI_R1_PREFILL = "Let me solve this step by step.\n<think>"
R1V_EVAL_SUFFIX = (
    " First output the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags."
)
GPQA_INSTRUCTION = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering."
)


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


def test_registered_names_aliases_and_attributes():
    expected = {
        "aime24": ("math_accuracy", 64),
        "math500": ("math_accuracy", 4),
        "gpqa_diamond": ("choice_accuracy", 8),
        "countdown": ("countdown_equation", 4),
        "superclevr_counting": ("count_accuracy", 1),
    }
    modules = {"gpqa_diamond": "gpqa", "superclevr_counting": "superclevr"}
    listed = {row["name"]: row for row in r1h.list_plugins("benchmark")}
    for name, (reward, n) in expected.items():
        bench = r1h.get_benchmark(name)
        assert (bench.name, bench.reward, bench.default_samples) == (name, reward, n)
        assert bench.version and bench.description
        assert listed[name]["plugin"] == "r1h.benchmarks." + modules.get(name, name)
    for alias, name in [("aime_2024", "aime24"), ("math_500", "math500"), ("gpqa", "gpqa_diamond"),
                        ("superclevr", "superclevr_counting")]:
        assert r1h.get_benchmark(alias).name == name
    with pytest.raises(ConfigError):
        r1h.get_benchmark("math500", bogus=1)


# -- math ---------------------------------------------------------------------------------------------------------
def test_math_prompts_are_the_r1_recommendation(tmp_path):
    rows = [{"id": 60, "problem": "Find $x$.", "answer": "025", "solution": "..."},
            {"id": 61, "problem": "Find $y$.", "answer": "7"}]
    aime = r1h.get_benchmark("aime24")
    samples = aime.load(str(write_jsonl(tmp_path / "aime.jsonl", rows)))
    assert [s.id for s in samples] == ["60", "61"]
    assert samples[0].columns == {"answer": "025"}
    assert aime.prompt(samples[0]) == [{"role": "user", "content": "Find $x$.\n" + R1_MATH_SUFFIX}]
    assert aime.reference_completion(samples[0]).endswith("The final answer is \\boxed{025}.")

    math = r1h.get_benchmark("math500")
    rows = [{"problem": "P", "answer": "\\frac{1}{2}", "unique_id": "test/algebra/1.json"}, {"problem": "Q", "answer": "3"}]
    samples = math.load(str(write_jsonl(tmp_path / "m.jsonl", rows)))
    assert [s.id for s in samples] == ["test/algebra/1.json", "row-1"]  # row index where the id column is absent
    assert math.prompt(samples[1])[0]["content"] == "Q\nPlease reason step by step, and put your final answer within \\boxed{}."  # noqa: E501
    assert math.load(str(tmp_path / "m.jsonl"), limit=1)[0].id == "test/algebra/1.json"


def test_math_request_has_no_prefill(tmp_path):
    bench = r1h.get_benchmark("math500")
    sample = bench.load(str(write_jsonl(tmp_path / "m.jsonl", [{"problem": "P", "answer": "1"}])))[0]
    request = bench.request(sample, [0, 1], [5, 6])
    assert request.continue_final_message is False and request.images == []


# -- gpqa ---------------------------------------------------------------------------------------------------------
def write_gpqa(path: Path, n: int) -> Path:
    fields = ["Record ID", "Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
              "Incorrect Answer 3", "Subdomain"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for i in range(n):
            writer.writerow({"Record ID": f"rec{i:03d}", "Question": f" Question {i}?\nSecond line. ",
                             "Correct Answer": f"right {i} ", "Incorrect Answer 1": f"wrong1 {i}",
                             "Incorrect Answer 2": f"wrong2 {i}", "Incorrect Answer 3": f"wrong3 {i}",
                             "Subdomain": "Physics"})
    return path


def test_gpqa_prompt_gold_letter_and_stable_shuffle(tmp_path):
    path = write_gpqa(tmp_path / "gpqa_diamond.csv", 40)
    bench = r1h.get_benchmark("gpqa_diamond")
    random.seed(1)
    state = random.getstate()
    first = bench.load(str(path))
    assert random.getstate() == state  # the global RNG is neither used nor reseeded
    random.seed(12345)
    again = r1h.get_benchmark("gpqa").load(str(tmp_path))  # a clone directory holding gpqa_diamond.csv
    assert [(s.id, s.columns, bench.prompt(s)) for s in first] == [(s.id, s.columns, bench.prompt(s)) for s in again]

    letters = [s.columns["answer"] for s in first]
    assert set(letters) == set("ABCD")  # really shuffled, not always A
    for s in first:
        text = bench.prompt(s)[0]["content"]
        i = s.id[3:].lstrip("0") or "0"
        assert f"\n{s.columns['answer']}) right {i}\n" in text + "\n"  # the gold letter points at the right answer

    s = first[0]
    choices = {line[0]: line[3:] for line in bench.prompt(s)[0]["content"].splitlines()[-4:]}
    expected = (f"{GPQA_INSTRUCTION}\n\nQuestion 0?\nSecond line.\n\nA) {choices['A']}\nB) {choices['B']}\n"
                f"C) {choices['C']}\nD) {choices['D']}")
    assert bench.prompt(s) == [{"role": "user", "content": expected}]
    assert sorted(choices.values()) == ["right 0", "wrong1 0", "wrong2 0", "wrong3 0"]  # stripped, each once
    assert bench.reference_completion(s).endswith(f"Answer: {s.columns['answer']}")


def test_gpqa_permutation_depends_only_on_the_id():
    from r1h.benchmarks.gpqa import choice_permutation

    assert choice_permutation("recA") == choice_permutation("recA")
    perms = {choice_permutation(f"rec{i}") for i in range(200)}
    assert len(perms) > 12 and all(sorted(p) == [0, 1, 2, 3] for p in perms)
    assert [choice_permutation(f"r{i}", seed=1) for i in range(20)] != [choice_permutation(f"r{i}") for i in range(20)]


def test_gpqa_missing_column_names_expected(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("Question,Correct Answer\nq,a\n", encoding="utf-8")
    with pytest.raises(DataError, match="Incorrect Answer 1") as exc:
        r1h.get_benchmark("gpqa_diamond").load(str(path))
    assert str(path) in str(exc.value) and "expected columns: Question, Correct Answer" in str(exc.value)


# -- countdown ----------------------------------------------------------------------------------------------------
def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return Fraction(node.value)
    if isinstance(node, ast.BinOp):
        a, b = _value(node.left), _value(node.right)
        ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b, ast.Div: lambda: a / b}
        return ops[type(node.op)]()
    raise AssertionError(f"unexpected node {ast.dump(node)}")


def _check_equation(expr: str, nums: list[int], target: int) -> None:
    tree = ast.parse(expr, mode="eval")
    used = sorted(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant))
    assert used == sorted(nums), (expr, nums)
    assert _value(tree) == target, (expr, target)


def test_countdown_prompt_is_mini_r1_byte_for_byte():
    from r1h.benchmarks.countdown import countdown_messages

    messages = countdown_messages([44, 19, 35], 98)
    assert messages == [
        {"role": "system", "content": MINI_R1_SYSTEM},
        {"role": "user", "content": MINI_R1_USER},
        {"role": "assistant", "content": MINI_R1_PREFILL},
    ]
    assert countdown_messages("[44, 19, 35]", 98.0) == messages  # CSV cells and float targets normalise


def test_countdown_generator_is_deterministic_solvable_and_in_range():
    from r1h.benchmarks.countdown import generate_puzzles

    puzzles = generate_puzzles(500)
    assert puzzles == generate_puzzles(500)
    assert generate_puzzles(20) == puzzles[:20]
    assert generate_puzzles(20, seed=1) != puzzles[:20]
    sizes = [len(p["nums"]) for p in puzzles]
    assert set(sizes) == {3, 4} and 200 < sizes.count(3) < 300
    for p in puzzles:
        assert 10 <= p["target"] <= 100 and all(1 <= n <= 99 for n in p["nums"])
        _check_equation(p["equation"], p["nums"], p["target"])
    assert len({p["target"] for p in puzzles}) > 80


def test_countdown_default_is_builtin_and_reference_continues_the_prefill():
    bench = r1h.get_benchmark("countdown")
    samples = bench.load()
    assert len(samples) == 500 and samples[0].id == "gen-0" and samples[-1].id == "gen-499"
    assert [s.columns for s in bench.load("builtin", limit=5)] == [s.columns for s in samples[:5]]
    assert len(bench.load("builtin:7")) == 7
    with pytest.raises(ConfigError):
        bench.load("builtin:0")
    request = bench.request(samples[0], [0], [1])
    assert request.continue_final_message and request.messages[-1]["content"] == MINI_R1_PREFILL
    ref = bench.reference_completion(samples[0])
    assert "<think>" not in ref and ref.count("</think>") == 1 and ref.rstrip().endswith("</answer>")
    pytest.importorskip("r1h.plugins.rewards.countdown")
    equation = ref.split("<answer>")[1].split("</answer>")[0].strip()
    lhs, _, rhs = equation.rpartition("=")
    assert int(rhs) == samples[0].columns["target"]
    _check_equation(lhs.strip(), samples[0].columns["nums"], samples[0].columns["target"])


def test_countdown_heldout_slice_of_a_full_source(tmp_path):
    from r1h.benchmarks.countdown import HELDOUT_END, HELDOUT_START, TRAIN_ROWS

    assert (HELDOUT_START, HELDOUT_END, TRAIN_ROWS) == (49_500, 50_000, 50_000)
    rng = random.Random(7)
    rows = [{"target": 10 + i % 91, "nums": [rng.randint(1, 99) for _ in range(3)]} for i in range(50_100)]
    bench = r1h.get_benchmark("countdown")
    samples = bench.load(str(write_jsonl(tmp_path / "full.jsonl", rows)))
    assert len(samples) == 500
    assert samples[0].id == "row-49500" and samples[-1].id == "row-49999"
    assert [s.columns for s in samples] == [{"target": r["target"], "nums": r["nums"]} for r in rows[49_500:50_000]]
    assert "rows 49500..49999" in bench.source_label

    small = bench.load(str(write_jsonl(tmp_path / "small.jsonl", rows[:30])), limit=10)
    assert [s.id for s in small] == [f"row-{i}" for i in range(10)]  # a smaller file is used as given


def test_countdown_bad_row_is_one_line(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"target": 5, "nums": [1, 2]}, {"target": "x", "nums": [1]}])
    with pytest.raises(DataError, match=r"c\.jsonl:2: column 'target' is the string 'x' \(expected an integer\)"):
        r1h.get_benchmark("countdown").load(str(path))


# -- superclevr ---------------------------------------------------------------------------------------------------
def make_superclevr(root: Path, rows: list[dict]) -> Path:
    from PIL import Image

    for row in rows:
        image = root / row["image_path"]
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (int(row["ground_truth"]) * 20, 0, 0)).save(image)
    return write_jsonl(root / "superclevr_test200_counting_problems.jsonl", rows)


def test_superclevr_prompt_images_and_overrides(tmp_path):
    rows = [{"image_path": "./images/superCLEVR_new_025000.png", "question": "How many items are there?",
             "ground_truth": 4},
            {"image_path": "./images/superCLEVR_new_025001.png", "question": "How many cubes?", "ground_truth": "9"}]
    make_superclevr(tmp_path, rows)
    bench = r1h.get_benchmark("superclevr_counting")
    samples = bench.load(str(tmp_path))
    assert [s.id for s in samples] == ["superCLEVR_new_025000", "superCLEVR_new_025001"]
    assert [s.columns for s in samples] == [{"answer": 4}, {"answer": 9}]
    assert samples[0].images == [str((tmp_path / "images" / "superCLEVR_new_025000.png").resolve())]
    assert bench.prompt(samples[0]) == [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": "How many items are there?" + R1V_EVAL_SUFFIX}]}]
    assert bench.generation_overrides == {"temperature": 0.0, "max_tokens": 256, "n": 1}
    assert bench.request(samples[1], [0], [0]).images == samples[1].images
    ref = bench.reference_completion(samples[1])
    assert ref.endswith("<answer>9</answer>") and ref.startswith("<think>")


def test_superclevr_r1v_layout_env_root_and_errors(tmp_path, monkeypatch):
    rows = [{"image_path": "./images/a.png", "question": "How many?", "ground_truth": 3}]
    make_superclevr(tmp_path / "eval", rows)  # images in eval/images ...
    prompts = tmp_path / "eval" / "prompts" / "superclevr_test200_counting_problems.jsonl"
    prompts.parent.mkdir()
    (tmp_path / "eval" / "superclevr_test200_counting_problems.jsonl").rename(prompts)  # ... prompts in eval/prompts
    bench = r1h.get_benchmark("superclevr")
    assert bench.load(str(tmp_path / "eval"))[0].images[0].endswith("eval/images/a.png")
    assert bench.load(str(prompts))[0].images[0].endswith("eval/images/a.png")

    monkeypatch.setenv("R1H_SUPERCLEVR_IMAGES", str(tmp_path / "eval" / "images"))  # the images folder itself
    assert bench.load(str(prompts))[0].images[0] == str(tmp_path / "eval" / "images" / "a.png")
    monkeypatch.setenv("R1H_SUPERCLEVR_IMAGES", str(tmp_path / "elsewhere"))
    with pytest.raises(DataError) as exc:
        bench.load(str(prompts))
    assert str(tmp_path / "elsewhere" / "images" / "a.png") in str(exc.value) and "\n" not in str(exc.value)
    monkeypatch.delenv("R1H_SUPERCLEVR_IMAGES")

    with pytest.raises(DataError, match="--data superclevr_counting=DIR"):
        bench.load()
    with pytest.raises(DataError, match="does not exist"):
        bench.load(str(tmp_path / "missing"))
    bad = write_jsonl(tmp_path / "eval" / "bad.jsonl", [{"image_path": "./images/a.png", "question": "q"}])
    with pytest.raises(DataError, match="expected columns: image_path, question, ground_truth"):
        bench.load(str(bad))


# -- gold backend -------------------------------------------------------------------------------------------------
def test_gold_backend_returns_the_reference_per_wanted_sample():
    backend = r1h.get_backend("gold")
    assert backend.needs_reference and backend.model_id == "gold"
    requests = [GenerationRequest(id="a", messages=[], sample_indices=[0, 2, 3], seeds=[1, 2, 3], reference="x  y z"),
                GenerationRequest(id="b", messages=[], sample_indices=[1], seeds=[1], reference="w")]
    out = backend.generate(requests, GenerationConfig(n=4))
    assert [[c.text for c in cs] for cs in out] == [["x  y z"] * 3, ["w"]]
    assert {(c.finish_reason, c.num_tokens) for c in out[0]} == {("stop", 3)}
    with pytest.raises(RunError, match="'c'"):
        backend.generate([GenerationRequest(id="c", messages=[])], GenerationConfig())
