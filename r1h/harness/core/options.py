"""Typed plugin options, and the one ``KEY=VALUE`` grammar of r1h's command line.

**Options** (the anchor: simonw/llm's nested ``class Options(llm.Options)`` per model, listed by ``llm models
--options``; lighteval's typed model configs). A backend declares what ``--backend-arg`` takes as a dataclass that
subclasses :class:`Options`, one :func:`option` per key with its type, default and help::

    @dataclasses.dataclass
    class MyOptions(Options):
        batch_size: int = option(16, "rows per batch", ge=1)
        device: Literal["auto", "cpu", "cuda"] = option("auto", "where the model runs")

    class MyBackend(Backend):
        Options = MyOptions

:meth:`Options.parse` reads the (string) ``--backend-arg`` values into it: an unknown key is refused with a
did-you-mean, a bad value with one line naming the flag, key and value (a :class:`FlagError`: a usage error).
``r1h list backends --wide`` shows :meth:`Options.table`. Keep the class in a module without heavy imports (torch,
vllm): ``r1h list`` imports it.

**The grammar.** :func:`split_pairs` splits ``KEY=VALUE`` flags (a malformed or repeated key is one line naming the
flag; ``train``'s Python API applies a composed override list in order with :func:`split_pair`, the command line
rejects a repeat). One rule gives each value its type:

- where the target declares a type (an :class:`Options` field; a TRL config field for ``train --set``), the text is
  read as that type: ``int``, ``float``, ``bool`` (true/false, yes/no, on/off, 1/0, any case), ``str``, a
  ``Literal`` choice (any case), a JSON object for ``dict``; an empty value is None where the type allows None;
- where it does not (``score --param``, a vLLM ``EngineArgs`` field r1h does not declare, ``train --set data.KEY``),
  :func:`literal`: the JSON value the text spells (``8``, ``0.5``, ``true``, ``null``, ``[1, 2]``, ``{"a": 1}``),
  else the text itself (``fp8``, ``none``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from r1h.harness.core.errors import FlagError

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")


def split_pair(flag: str, value: str, *, empty_ok: bool = True) -> tuple[str, str]:
    """One ``KEY=VALUE`` flag as ``(key, value)``; a malformed one is a one-line usage error naming the flag
    (``--backend-arg 'oops': expected KEY=VALUE``)."""
    key, sep, rest = value.partition("=")
    key = key.strip()
    if not sep or not key or (not empty_ok and not rest):
        raise FlagError(f"{flag} {value!r}: expected KEY=VALUE")
    return key, rest


def split_pairs(flag: str, values: Iterable[str], *, empty_ok: bool = True) -> dict[str, str]:
    """``KEY=VALUE`` flags into a dict, in order (:func:`split_pair`); a key given twice is a one-line usage error
    naming the flag (``--backend-arg a: given twice``)."""
    out: dict[str, str] = {}
    for value in values:
        key, rest = split_pair(flag, value, empty_ok=empty_ok)
        if key in out:
            raise FlagError(f"{flag} {key}: given twice")
        out[key] = rest
    return out


def literal(text: Any) -> Any:
    """The value of an untyped ``KEY=VALUE``: the JSON value ``text`` spells, else ``text`` as given."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:  # JSONDecodeError, or an integer over the digit limit
        return text


def option(default: Any = None, help: str = "", *, ge: float | None = None, gt: float | None = None,
           le: float | None = None) -> Any:
    """One option of an :class:`Options` dataclass: its default, a one-line help, and numeric bounds
    (``ge``: >=, ``gt``: >, ``le``: <=)."""
    return dataclasses.field(default=default, metadata={"help": help, "ge": ge, "gt": gt, "le": le})


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest of ``known``, else ``""``."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def type_name(tp: Any) -> str:
    """A type as ``r1h list`` and the docs show it: ``int``, ``float | None``, ``auto | bool``, ``a | b``."""
    if tp is type(None):
        return "None"
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(str(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is dict or tp is dict:
        return "JSON object"
    return getattr(tp, "__name__", str(tp))


def _expected(tp: Any) -> str:
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    return type_name(tp)


def _choices(tp: Any) -> str:
    if tp is bool:
        return "true, false"
    if typing.get_origin(tp) is Literal:
        return ", ".join(str(a) for a in typing.get_args(tp))
    return _expected(tp)


def convert(value: Any, tp: Any) -> Any:
    """``value`` (text from the command line, or an already-typed value) as the declared type ``tp``; ValueError
    with what was expected when it is not one (see the module docstring for the rule)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return literal(value)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and not value.strip()):
            if len(members) < len(typing.get_args(tp)):
                return None
        if len(members) == 1:
            return convert(value, members[0])
        for member in members:
            try:
                return convert(value, member)
            except ValueError:
                continue
        raise ValueError("one of " + ", ".join(_choices(m) for m in members))
    text = str(value).strip()
    if origin is Literal:
        for choice in typing.get_args(tp):
            if text.lower() == str(choice).lower():
                return choice
        raise ValueError(_expected(tp))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if text.lower() in TRUE + FALSE:
            return text.lower() in TRUE
    elif tp in (int, float):
        if isinstance(value, bool):
            pass
        elif isinstance(value, int) or (tp is float and isinstance(value, float)):
            return tp(value)
        else:
            try:
                return tp(text)
            except ValueError:
                pass
    elif tp is str:
        return value if isinstance(value, str) else str(value)
    elif origin is dict or tp is dict:
        parsed = value if isinstance(value, dict) else literal(value)
        if isinstance(parsed, dict):
            return parsed
        raise ValueError("a JSON object, e.g. '{\"image\": 1}'")
    else:  # a type this rule does not know (a plugin's own class): the value as given, for the plugin to check
        return value
    raise ValueError(_expected(tp))


def _bounds(number: Any, meta: Mapping[str, Any]) -> str | None:
    if not isinstance(number, (int, float)) or isinstance(number, bool):
        return None
    if meta.get("ge") is not None and not number >= meta["ge"]:
        return f"must be >= {meta['ge']:g}"
    if meta.get("gt") is not None and not number > meta["gt"]:
        return f"must be > {meta['gt']:g}"
    if meta.get("le") is not None and not number <= meta["le"]:
        return f"must be <= {meta['le']:g}"
    return None


@dataclasses.dataclass
class Options:
    """The base of a plugin's options: subclass it as a ``@dataclasses.dataclass`` whose fields are :func:`option`.

    ``extra`` (a phrase naming them) lets :meth:`parse` keep keys it does not declare (in ``extra_args``, untyped,
    for the plugin to check itself): the vllm backend hands them to vLLM's ``EngineArgs``."""

    extra: ClassVar[str] = ""

    @classmethod
    def fields(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else []

    @classmethod
    def parse(cls, values: Mapping[str, Any], *, owner: str, flag: str = "--backend-arg") -> Options:
        """``values`` (``--backend-arg`` text, or typed values from Python) read into the declared types; a default
        for each key not given. ``owner`` names the plugin in errors (``backend 'vllm'``)."""
        fields = {f.name: f for f in cls.fields()}
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in values.items():
            if key not in fields:
                if cls.extra:
                    extra[key] = value
                    continue
                known = ", ".join(fields) or "none (it takes no " + flag + ")"
                raise FlagError(f"{owner} does not know {flag} {key}{did_you_mean(key, fields)} (known: {known})")
            try:
                kwargs[key] = convert(value, hints[key])
            except ValueError as exc:
                raise FlagError(f"{flag} {key}={value}: expected {exc}") from None
            why = _bounds(kwargs[key], fields[key].metadata)
            if why:
                raise FlagError(f"{flag} {key}={value}: {why}")
        options = cls(**kwargs)
        options.extra_args = extra  # the undeclared keys an ``extra`` class keeps, as given
        return options

    @classmethod
    def table(cls) -> list[dict[str, str]]:
        """One row per option: ``name``, ``type``, ``default`` and ``help``, for ``r1h list`` and the docs."""
        hints = typing.get_type_hints(cls)
        rows = []
        for f in cls.fields():
            default = f.default if f.default is not dataclasses.MISSING else None
            shown = "-" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
            rows.append({"name": f.name, "type": type_name(hints[f.name]), "default": shown,
                         "help": f.metadata.get("help", "")})
        return rows

    @classmethod
    def markdown(cls) -> str:
        """:meth:`table` as a Markdown table (the docs' option tables are checked against it)."""
        lines = ["| option | type | default | meaning |", "|---|---|---|---|"]
        bar = "\\|"  # a | inside a table cell
        lines += [f"| `{r['name']}` | {r['type'].replace('|', bar)} | {r['default']} | {r['help']} |"
                  for r in cls.table()]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in self.fields()}


@dataclasses.dataclass
class NoOptions(Options):
    """The options of a plugin that takes none."""
