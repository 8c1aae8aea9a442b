"""The one sampling policy: what every backend sends for a :class:`GenerationConfig`, in r1h's terms.

The R1 protocol samples with temperature and top-p and nothing else. Engines fill what a caller leaves unset from the
checkpoint's ``generation_config.json`` (transformers' ``generate``, ``vllm serve``, vLLM's
``LLM.get_default_sampling_params``), so a checkpoint that ships ``repetition_penalty: 1.3`` or ``top_k: 20`` would
silently change what r1h measures. Therefore (``--generation-config``):

- ``neutral`` (default): temperature and top-p as asked, and explicit neutral values for the rest
  (:data:`NEUTRAL_KEYS`: ``top_k`` off, ``min_p=0.0``, ``repetition_penalty=1.0``) unless the config sets them;
- ``model``: those three come from the checkpoint (:func:`sampling_params` reads them from ``model_defaults`` where
  the backend has it at hand, else leaves them None: left to the engine, which reads the checkpoint itself).

Greedy (temperature 0) sends ``temperature=0.0, top_p=1.0``. A backend only renames: :func:`engine_params` spells
the result in an engine's terms (top-k "off" as vLLM's and OpenAI-compatible servers' ``-1``; keys left to the
checkpoint dropped), and :func:`effective` reads what an engine was sent back into r1h's terms (each backend's
``effective_sampling`` test hook).
"""

from __future__ import annotations

from typing import Any

from r1h.harness.core.errors import ConfigError

POLICIES = ("neutral", "model")
NEUTRAL_KEYS = ("top_k", "min_p", "repetition_penalty")  # what the policy decides beyond temperature and top-p


def check_policy(policy: str | None) -> str:
    """The policy name (``neutral`` when empty); ConfigError for an unknown one."""
    policy = policy or "neutral"
    if policy not in POLICIES:
        raise ConfigError(f"generation policy {policy!r}: expected one of {', '.join(POLICIES)}")
    return policy


def _top_k(value: Any) -> int | None:
    """top-k as r1h records it: None when disabled (None, 0 or negative, as vLLM's -1)."""
    if value is None:
        return None
    number = int(value)
    return number if number > 0 else None


def sampling_params(config: Any, model_defaults: Any = None) -> dict[str, Any]:
    """The sampling parameters for ``config`` (an r1h ``GenerationConfig``), in r1h's terms.

    Keys: ``temperature``, ``top_p``, ``top_k`` (None = disabled), ``min_p`` (0.0 = off), ``repetition_penalty``
    (1.0 = off). With the ``model`` policy, ``model_defaults`` (the checkpoint's HF ``GenerationConfig`` or a dict)
    supplies top_k, min_p and repetition_penalty; without it each of the three is None (left to the engine). Pure.
    """
    policy = check_policy(getattr(config, "policy", "neutral"))
    greedy = float(config.temperature) <= 0.0
    params = {
        "temperature": 0.0 if greedy else float(config.temperature),
        "top_p": 1.0 if greedy else float(config.top_p),
        "top_k": _top_k(getattr(config, "top_k", None)),
        "min_p": float(getattr(config, "min_p", 0.0) or 0.0),
        "repetition_penalty": float(getattr(config, "repetition_penalty", 1.0) or 1.0),
    }
    if policy == "model" and model_defaults is None:  # left to the engine, which reads the checkpoint
        params.update(dict.fromkeys(NEUTRAL_KEYS))
    elif policy == "model":
        get = model_defaults.get if isinstance(model_defaults, dict) else lambda k: getattr(model_defaults, k, None)
        params["top_k"] = _top_k(get("top_k"))
        params["min_p"] = float(get("min_p") or 0.0)
        params["repetition_penalty"] = float(get("repetition_penalty") or 1.0)
    return params


def engine_params(config: Any, *, top_k_off: int = -1) -> dict[str, Any]:
    """:func:`sampling_params` as an engine that reads the checkpoint itself takes them: keys left to the checkpoint
    dropped, top-k "off" spelled ``top_k_off`` (vLLM's ``SamplingParams`` and the OpenAI-compatible servers: -1)."""
    params = sampling_params(config)
    if check_policy(getattr(config, "policy", "neutral")) == "model":  # the engine reads the checkpoint's
        return {k: v for k, v in params.items() if k not in NEUTRAL_KEYS}
    return {**params, "top_k": top_k_off if params["top_k"] is None else params["top_k"]}


def effective(sent: dict[str, Any]) -> dict[str, Any]:
    """What an engine was sent, back in r1h's terms (top_k None = off); None for a key left to the checkpoint."""
    top_k = sent.get("top_k")
    return {"temperature": sent["temperature"], "top_p": sent["top_p"],
            "top_k": None if top_k is None or top_k <= 0 else top_k,
            "min_p": sent.get("min_p"), "repetition_penalty": sent.get("repetition_penalty")}
