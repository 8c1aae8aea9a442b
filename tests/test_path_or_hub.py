"""The one "path or hub id" rule (r1h/harness/core/naming.py ``looks_like_path``), as ``--model``, ``--data`` and a
training recipe's data source apply it: a name meant as a local path that does not exist is "not found", never a hub
lookup."""

from __future__ import annotations

import pytest

from r1h.harness.core.errors import ConfigError, DataError
from r1h.harness.core.naming import looks_like_path
from r1h.harness.data.sources import resolve
from r1h.plugins.backends.models import resolve_model
from r1h.trainers.data import load_source


@pytest.mark.parametrize("spec, suffixes, path", [
    ("Qwen/Qwen2.5-Math-1.5B", (), False),
    ("gpt2", (), False),
    ("HuggingFaceH4/MATH-500", (".jsonl",), False),
    ("./model", (), True),
    ("../model", (), True),
    (".hidden", (), True),
    ("/abs/model", (), True),
    ("~/model", (), True),
    ("out/sft/checkpoint-500", (), True),  # a hub id has at most one slash
    ("org/name with space", (), True),
    ("org/model.GGUF", (".gguf",), True),
    ("data.JSONL", (".jsonl", ".csv"), True),
    ("org/data.jsonl", (), False),  # without the suffix list it is shaped like a hub id
])
def test_looks_like_path(spec, suffixes, path):
    assert looks_like_path(spec, suffixes) is path


@pytest.mark.parametrize("name", ["out/sft/checkpoint-500", "org/name with space", "./nope", "nope.gguf"])
def test_model_meant_as_a_path_is_not_found(name):
    with pytest.raises(ConfigError, match=r"no such file or directory"):
        resolve_model(name)


@pytest.mark.parametrize("name", ["out/sft/checkpoint-500", "org/name with space", "./nope", "nope.jsonl"])
def test_eval_data_meant_as_a_path_is_not_found(name):
    with pytest.raises(DataError, match=r"does not exist"):
        resolve(name, default_hub_id=None, name="math500")


@pytest.mark.parametrize("name", ["out/sft/checkpoint-500", "org/name with space", "./nope", "nope.jsonl"])
def test_training_data_meant_as_a_path_is_not_found(name):
    with pytest.raises(DataError) as exc:
        load_source(name)
    assert str(exc.value) == f"data file {name} does not exist"
