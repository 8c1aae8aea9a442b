"""Fake ``vllm.sampling_params``: the fields and defaults of vLLM's ``SamplingParams`` that r1h sets
(vllm/sampling_params.py: ``top_k`` 0 or -1 = all tokens, ``min_p`` 0 = disabled, ``repetition_penalty`` 1 = none)."""

from __future__ import annotations

import enum


class RequestOutputKind(enum.Enum):
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2


_FIELDS = {
    "n": 1, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0,
    "presence_penalty": 0.0, "frequency_penalty": 0.0, "seed": None, "stop": None, "max_tokens": 16,
    "output_kind": RequestOutputKind.CUMULATIVE,
}


class SamplingParams:
    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(_FIELDS)
        if unknown:
            raise TypeError(f"SamplingParams got an unexpected keyword argument {sorted(unknown)[0]!r}")
        for key, default in _FIELDS.items():
            setattr(self, key, kwargs.get(key, default))
        self.kwargs = dict(kwargs)

    @classmethod
    def from_optional(cls, **kwargs):
        return cls(**{k: v for k, v in kwargs.items() if v is not None})

    def __repr__(self):
        return f"SamplingParams({self.kwargs})"
