"""The ``--backend-arg``s of the vllm backend: r1h's own two, the ``vllm.EngineArgs`` fields r1h types, and any other
``EngineArgs`` field (kept untyped in ``extra_args``, checked against ``dataclasses.fields(vllm.EngineArgs)`` by
``vllm.engine_kwargs`` and read by the literal rule of :mod:`r1h.harness.core.options`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from r1h.harness.core.options import Options, option

OURS = ("max_in_flight", "gguf")  # r1h's own options; every other one is a vllm.EngineArgs field


@dataclasses.dataclass
class VLLMOptions(Options):
    """``--backend-arg``s of the vllm backend; ``-`` (None): vLLM's own default. Any other ``vllm.EngineArgs`` field
    is passed on too."""

    extra = "any other vllm.EngineArgs field (its value by the literal rule: JSON, else the text)"

    max_in_flight: int | None = option(None, "samples in the engine at once (default: twice the engines' "
                                             "max_num_seqs)", ge=1)
    gguf: Literal["convert", "native"] = option("convert", "a .gguf model: convert it once to a cached HF folder, or "
                                                           "hand the file to vLLM (then tokenizer= its base model)")
    tensor_parallel_size: int | None = option(None, "GPUs per engine (tensor parallelism)", ge=1)
    data_parallel_size: int | None = option(None, "engine cores behind one AsyncLLM (vLLM's data parallelism)", ge=1)
    pipeline_parallel_size: int | None = option(None, "pipeline stages per engine", ge=1)
    gpu_memory_utilization: float | None = option(None, "share of GPU memory for the engine (on CPU: of RAM for the "
                                                        "KV cache; r1h's CPU default 0.2)", gt=0, le=1)
    max_model_len: int | None = option(None, "context length (default: the checkpoint's)", ge=1)
    dtype: str | None = option(None, "weights and activations dtype (auto, bfloat16, float16, float32)")
    seed: int | None = option(None, "the engine's seed (each sample sends its own)", ge=0)
    trust_remote_code: bool | None = option(None, "run the checkpoint's own modelling code")
    enforce_eager: bool | None = option(None, "no CUDA graphs (faster start, slower decode)")
    max_num_seqs: int | None = option(None, "sequences per engine step", ge=1)
    max_num_batched_tokens: int | None = option(None, "tokens per engine step (r1h's CPU default: the context "
                                                      "length)", ge=1)
    enable_prefix_caching: bool | None = option(None, "share cached prompt prefixes between requests")
    enable_chunked_prefill: bool | None = option(None, "split long prefills across steps (r1h's CPU default: false)")
    quantization: str | None = option(None, "vLLM's quantization method (awq, gptq, fp8...)")
    tokenizer: str | None = option(None, "tokenizer hub id or folder (a native GGUF needs its base model's)")
    limit_mm_per_prompt: dict | None = option(None, "JSON object: items per modality, e.g. {\"image\": 1}")

    def engine_args(self) -> dict[str, Any]:
        """The declared ``EngineArgs`` fields that were given (not None), typed."""
        return {k: v for k, v in self.as_dict().items() if k not in OURS and v is not None}
