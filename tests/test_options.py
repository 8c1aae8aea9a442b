"""Typed backend options and the one KEY=VALUE grammar (issue 19, items 3 and 4): the parser, the built-in backends'
declarations, `r1h list backends --wide`, and the docs' option tables checked against the classes."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from click.testing import CliRunner

from r1h.harness.cli.main import main
from r1h.harness.core.errors import FlagError
from r1h.harness.core.options import NoOptions, Options, literal, option, split_pairs
from r1h.plugins.backends.gold import GoldBackend
from r1h.plugins.backends.openai import OpenAIBackend
from r1h.plugins.backends.openai_options import OpenAIOptions
from r1h.plugins.backends.transformers import TransformersBackend, TransformersOptions
from r1h.plugins.backends.vllm import VLLMBackend
from r1h.plugins.backends.vllm_options import VLLMOptions

DOCS = Path(__file__).resolve().parent.parent / "docs"


@dataclasses.dataclass
class Demo(Options):
    size: int = option(16, "rows", ge=1)
    rate: float = option(1.0, "a rate", gt=0, le=2)
    flag: bool = option(False, "a switch")
    mode: Literal["auto", "fast"] = option("auto", "a choice")
    vision: Literal["auto"] | bool = option("auto", "auto or a switch")
    limit: int | None = option(None, "optional", ge=0)
    name: str = option("x", "text")
    table: dict | None = option(None, "a JSON object")


def _error(values: dict) -> str:
    with pytest.raises(FlagError) as exc:
        Demo.parse(values, owner="backend 'demo'")
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_values_are_typed_by_the_declared_type():
    opts = Demo.parse({"size": " 8 ", "rate": "0.5", "flag": "YES", "mode": "Fast", "vision": "off", "limit": "",
                       "name": "7", "table": '{"image": 1}'}, owner="backend 'demo'")
    assert (opts.size, opts.rate, opts.flag, opts.mode, opts.vision, opts.limit, opts.name, opts.table) == (
        8, 0.5, True, "fast", False, None, "7", {"image": 1})
    assert Demo.parse({}, owner="x") == Demo()  # defaults
    assert Demo.parse({"vision": "AUTO", "limit": 0}, owner="x").vision == "auto"
    typed = Demo.parse({"size": 3, "flag": True, "rate": 2}, owner="x")  # typed values from Python pass through
    assert (typed.size, typed.flag, typed.rate) == (3, True, 2.0)


@pytest.mark.parametrize("values, expected", [
    ({"size": "abc"}, "--backend-arg size=abc: expected an integer"),
    ({"size": "0"}, "--backend-arg size=0: must be >= 1"),
    ({"size": True}, "--backend-arg size=True: expected an integer"),
    ({"rate": "fast"}, "--backend-arg rate=fast: expected a number"),
    ({"rate": "0"}, "--backend-arg rate=0: must be > 0"),
    ({"rate": "3"}, "--backend-arg rate=3: must be <= 2"),
    ({"rate": "nan"}, "--backend-arg rate=nan: must be > 0"),
    ({"flag": "maybe"}, "--backend-arg flag=maybe: expected true or false"),
    ({"mode": "slow"}, "--backend-arg mode=slow: expected one of auto, fast"),
    ({"vision": "sometimes"}, "--backend-arg vision=sometimes: expected one of auto, true, false"),
    ({"limit": "-1"}, "--backend-arg limit=-1: must be >= 0"),
    ({"table": "[1]"}, "--backend-arg table=[1]: expected a JSON object"),
])
def test_a_bad_value_is_one_line_naming_flag_key_and_value(values, expected):
    assert _error(values).startswith(expected)


def test_unknown_keys_get_a_did_you_mean_unless_the_class_keeps_them():
    message = _error({"sise": "3"})
    assert message.startswith("backend 'demo' does not know --backend-arg sise; did you mean size? (known: size, ")
    assert "did you mean" not in _error({"zzz": "1"})
    with pytest.raises(FlagError, match="does not know --backend-arg a .*it takes no --backend-arg"):
        NoOptions.parse({"a": "1"}, owner="backend 'gold'")

    @dataclasses.dataclass
    class Open(Demo):
        extra = "anything else"

    opts = Open.parse({"size": "2", "other": "8"}, owner="x")
    assert (opts.size, opts.extra_args) == (2, {"other": "8"})


def test_one_splitter_and_the_literal_rule():
    assert split_pairs("--param", ["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(FlagError, match=r"^--param a: given twice$"):
        split_pairs("--param", ["a=1", " a=2"])
    with pytest.raises(FlagError, match=r"^--set 'oops': expected KEY=VALUE$"):
        split_pairs("--set", ["oops"])
    with pytest.raises(FlagError, match="expected KEY=VALUE"):
        split_pairs("--data", ["k="], empty_ok=False)
    assert [literal(t) for t in ("8", "0.5", "true", "null", "[1, 2]", '{"a": 1}', "fp8", "none", "1e-6", "")] == [
        8, 0.5, True, None, [1, 2], {"a": 1}, "fp8", "none", 1e-6, ""]


def test_train_set_uses_the_one_splitter_and_rule(tmp_path, monkeypatch):
    from r1h.trainers.recipes import Recipe, apply_overrides

    recipe = Recipe(name="r", workflow="sft", model="m", data={}, processor={}, rewards=[], config={})
    apply_overrides(recipe, ["max_steps=3", "--learning-rate=1e-6", "data.columns=[\"a\", \"b\"]", "report_to=none",
                             "rewards=format,accuracy", "max_steps=4"])  # the Python API: a later override wins
    assert recipe.config == {"max_steps": 4, "learning_rate": 1e-6, "report_to": "none"}
    assert (recipe.data, recipe.rewards) == ({"columns": ["a", "b"]}, ["format", "accuracy"])
    with pytest.raises(FlagError, match=r"^--set 'oops': expected KEY=VALUE$"):
        apply_overrides(recipe, ["oops"])
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["train", "sft", "--dry-run", "--set", "max_steps=3", "--max_steps", "4"])
    assert res.exit_code == 2 and res.output.splitlines()[-1].endswith("--set max_steps: given twice"), res.output


def test_every_builtin_backend_declares_typed_options():
    assert TransformersBackend.Options is TransformersOptions
    assert OpenAIBackend.Options is OpenAIOptions
    assert VLLMBackend.Options is VLLMOptions
    assert GoldBackend.Options is NoOptions
    for cls in (TransformersOptions, OpenAIOptions, VLLMOptions):
        rows = cls.table()
        assert rows and all(row["help"] and row["type"] for row in rows), cls
    opts = OpenAIOptions.parse({"concurrency": "3", "use_n": "true", "timeout": "5"}, owner="backend 'openai'")
    assert (opts.concurrency, opts.use_n, opts.timeout, opts.deadline) == (3, True, 5.0, 3600.0)


def _doc_block(path: Path, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    found = re.search(rf"<!-- options: {name} \(.*?-->\n(.*?)\n<!-- /options -->", text, re.S)
    assert found, f"{path.name} has no generated options table for {name}"
    return found.group(1)


@pytest.mark.parametrize("doc, name, cls", [
    ("backends.md", "transformers", TransformersOptions),
    ("vllm.md", "vllm", VLLMOptions),
    ("openai-backend.md", "openai", OpenAIOptions),
])
def test_docs_option_tables_match_the_options_classes(doc, name, cls):
    assert _doc_block(DOCS / doc, name) == cls.markdown(), (
        f"docs/{doc}: regenerate the {name} table from {cls.__module__}.{cls.__name__}.markdown()")


def test_list_backends_wide_shows_options_without_heavy_imports():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom r1h.harness.cli.main import main\n"
            "res = CliRunner().invoke(main, ['list', 'backends', '--wide'])\nprint(res.output)\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'vllm', 'transformers', 'aiohttp'})\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "HEAVY []" in out
    for name, cls in (("transformers", TransformersOptions), ("openai", OpenAIOptions), ("vllm", VLLMOptions)):
        assert f"{name} --backend-arg" in out
        for row in cls.table():
            assert re.search(rf"^{row['name']} +{re.escape(row['type'])} +{re.escape(row['default'])} ", out, re.M), \
                (name, row["name"])
    assert "gold --backend-arg: none" in out
    assert "and any other vllm.EngineArgs field" in out
    rows = json.loads(CliRunner().invoke(main, ["list", "backends", "--json"]).output)
    by_name = {row["name"]: row for row in rows}
    assert by_name["transformers"]["options"] == TransformersOptions.table()
    assert by_name["gold"]["options"] == []
