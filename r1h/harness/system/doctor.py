"""``r1h doctor``: can the stack in front of you run the guide's workflows? Each problem in one line with its fix.

Levels: ``ok`` / ``info`` (nothing to do), ``warn`` (works, but check), ``fail`` (blocks a workflow: a broken torch
or vLLM, or a ``--need`` that is not met). Exit code 0 all good, 2 warnings only, 1 something blocks (see
:func:`exit_code`).

Nothing heavy is imported in this process: versions come from ``importlib.metadata``; torch and vLLM are imported
in subprocesses, each with a timeout; the hub is one HEAD request with a timeout. The probes run in parallel.
The hub check uses ``urllib`` rather than httpx/huggingface_hub: one bounded HEAD request needs no client, and the
hub client retries for tens of seconds on an offline machine, which is exactly what doctor must not do.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from r1h.harness.system import settings
from r1h.harness.system import stack as stk

HUB_TIMEOUT = 3.0
VLLM_IMPORT_TIMEOUT = 120.0
MIN_FREE_GIB = 20.0
# TRL 1.16 trl/import_utils.py is_vllm_available(): warns outside Version("0.22.0") <= vllm <= Version("0.31.0").
# Read from the installed TRL source when it is there (TRL exposes no constant); this is the fallback.
TRL_VLLM_RANGE_FALLBACK = ("0.22.0", "0.31.0")
# What each --need asks for: (display name in stack.LIBS, why).
NEEDS: dict[str, tuple[str, ...]] = {
    "eval": ("torch", "transformers"),
    "train": ("torch", "transformers", "trl", "accelerate"),
    "vision": ("torch", "torchvision", "transformers", "trl"),
    "vllm": ("vllm",),
    "deepspeed": ("deepspeed",),
}
EXTRA_FOR = {"torch": "hf", "transformers": "hf", "accelerate": "hf", "trl": "train", "torchvision": "vision",
             "vllm": "vllm", "deepspeed": "deepspeed"}


@dataclass
class Finding:
    """One line of the report: ``check`` (what), ``level`` (ok/info/warn/fail), the message and the fix."""

    check: str
    level: str
    message: str
    fix: str = ""


def exit_code(findings: list[Finding]) -> int:
    """1 when anything blocks a workflow, 2 when there are warnings only, 0 when all is good."""
    levels = {f.level for f in findings}
    return 1 if "fail" in levels else 2 if "warn" in levels else 0


# -- the checks ---------------------------------------------------------------------------------------------------------
def check_libraries(libs: dict[str, Any]) -> list[Finding]:
    """Vendor builds (flagged, to be kept) and plain wheels that replaced a vendor build (the guide's 3.3.5)."""
    out: list[Finding] = []
    for name, lib in libs.items():
        if lib["vendor"]:
            out.append(Finding(name, "info", f"vendor build {lib['dist']} {lib['version']} ({lib['build']})",
                               "keep it: pip install -c constraints.txt ... (r1h doctor --constraints > constraints.txt)"))
    torch_kind = (libs.get("torch") or {}).get("build")
    if torch_kind == "metax":  # the guide: every library of its list must carry +metax on a C500
        guide = {display for display, _ in stk.GUIDE_VENDOR_LIBS}
        for name, lib in libs.items():
            if name in guide and lib["build"] != "metax":
                out.append(Finding(name, "warn", f"{lib['dist']} {lib['version']} is not a +metax build while torch "
                                   "is; a resolver probably replaced the vendor wheel",
                                   "reinstall the vendor wheel (the guide's image keeps them in /home/sw/maca_wheel), "
                                   "then pin it with r1h doctor --constraints"))
    return out


def check_torch(libs: dict[str, Any], probe: dict[str, Any] | None) -> list[Finding]:
    if "torch" not in libs:
        return [Finding("torch", "info", "torch is not installed (needed by the transformers/vllm backends and "
                        "training)", "pip install -c constraints.txt 'r1h[hf]'")]
    probe = probe or {}
    if "error" in probe:
        return [Finding("torch", "fail", f"torch {libs['torch']['version']} is installed but {probe['error']}",
                        "reinstall the torch build for this machine (keep vendor builds: r1h doctor --constraints)")]
    out = [Finding("torch", "ok", f"torch {probe.get('version')} backend {probe.get('backend')}"
                   + "".join(f" {k} {probe[k]}" for k in ("cuda", "hip", "maca") if probe.get(k)))]
    devices = probe.get("accelerators") or []
    errors = [d["error"] for d in devices if "error" in d]
    if errors:
        out.append(Finding("accelerators", "fail", f"torch cannot use the accelerators: {errors[0]}",
                           "check the driver (nvidia-smi / mx-smi / rocm-smi) and that torch's build matches it"))
    elif not devices:
        out.append(Finding("accelerators", "warn", f"no accelerator visible to torch (backend {probe.get('backend')}): "
                           "only tiny models are practical", "check the driver, CUDA_VISIBLE_DEVICES and that torch is "
                           "the build for this card"))
    else:
        names = sorted({d["name"] for d in devices})
        memory = sorted({d["memory_gib"] for d in devices})
        out.append(Finding("accelerators", "ok", f"{len(devices)} x {', '.join(names)} "
                           f"({', '.join(f'{m:g}' for m in memory)} GiB), bf16 {'yes' if devices[0]['bf16'] else 'no'}"))
        if not devices[0]["bf16"]:
            out.append(Finding("accelerators", "warn", "the accelerators do not support bf16; the guide's recipes "
                               "train in bf16", "r1h train ... --set bf16=false --set fp16=true"))
    return out


def trl_vllm_range() -> tuple[str, str]:
    """The vLLM range TRL warns outside, read from the installed TRL source (no import), else the fallback."""
    spec = find_spec("trl") if "trl" not in sys.modules else None
    origin = spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None
    if origin is None and "trl" in sys.modules:
        origin = os.path.dirname(getattr(sys.modules["trl"], "__file__", "") or "")
    try:
        text = Path(origin, "import_utils.py").read_text(encoding="utf-8") if origin else ""
    except OSError:
        text = ""
    m = re.search(r'Version\("([\d.]+)"\)\s*<=\s*_vllm\w*\s*<=\s*Version\("([\d.]+)"\)', text)
    return (m.group(1), m.group(2)) if m else TRL_VLLM_RANGE_FALLBACK


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.partition("+")[0].split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def probe_import(module: str, timeout: float = VLLM_IMPORT_TIMEOUT) -> str | None:
    """Import ``module`` in a subprocess; None when it imports, else a one-line reason."""
    code = f"import {module}"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"import {module} did not finish within {timeout:g} s"
    if proc.returncode == 0:
        return None
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else f"exit status {proc.returncode}")[:300]


def check_vllm(libs: dict[str, Any], import_error: str | None, needed: bool) -> list[Finding]:
    if "vllm" not in libs:
        level = "fail" if needed else "info"
        return [Finding("vllm", level, "vLLM is not installed (--backend vllm and TRL use_vllm need it)",
                        "pip install -c constraints.txt 'r1h[vllm]' (on a vendor box: the vendor's vLLM wheel)")]
    lib = libs["vllm"]
    version = lib["version"]
    named = f"vllm {version}" + (f" ({lib['dist']}, {lib['build'] or 'pypi'} build)" if lib["dist"] != "vllm" else "")
    if import_error:
        return [Finding("vllm", "fail", f"{named} is installed but does not import: {import_error}",
                        "reinstall the vLLM build that matches torch (keep torch: pip install -c constraints.txt ...),"
                        " or uninstall vllm")]
    out = [Finding("vllm", "ok", f"{named} imports")]
    if "trl" in libs:
        low, high = trl_vllm_range()
        if not (_release(low) <= _release(version) <= _release(high)):
            out.append(Finding("vllm", "warn", f"{named} is outside TRL {libs['trl']['version']}'s supported "
                               f"range {low}-{high}; GRPO with use_vllm may break",
                               f"use a vLLM between {low} and {high} for training, or train with --no-vllm"))
        else:
            out.append(Finding("vllm", "ok", f"vllm {version} is inside TRL {libs['trl']['version']}'s supported "
                               f"range {low}-{high}"))
        if lib["build"] == "cpu":
            out.append(Finding("vllm", "info", "CPU vLLM: GRPO use_vllm runs in vllm_mode=colocate (r1h syncs the "
                               "weights through vLLM's in-place reload); server mode needs CUDA for TRL's weight sync"))
    return out


def check_needs(libs: dict[str, Any], needs: list[str]) -> list[Finding]:
    out = []
    for need in needs:
        missing = [lib for lib in NEEDS[need] if lib not in libs and lib != "vllm"]  # vllm: check_vllm
        for lib in missing:
            out.append(Finding(need, "fail", f"--need {need}: {lib} is not installed",
                               f"pip install -c constraints.txt 'r1h[{EXTRA_FOR.get(lib, need)}]'"))
    return out


def check_hub(timeout: float = HUB_TIMEOUT) -> list[Finding]:
    """Offline mode, or one HEAD request to HF_ENDPOINT."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if offline:
        return [Finding("hub", "ok", "offline mode (HF_HUB_OFFLINE=1): nothing is downloaded",
                        "pass local paths: --model DIR, --data NAME=PATH")]
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    request = urllib.request.Request(endpoint + "/api/models?limit=1", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - the user's own HF_ENDPOINT
            pass
    except urllib.error.HTTPError:  # it answered: reachable
        pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return [Finding("hub", "warn", f"hub {endpoint} unreachable in {timeout:g} s ({reason}): hub ids will fail",
                        "export HF_HUB_OFFLINE=1 and pass local clones: --model DIR, --data NAME=PATH")]
    return [Finding("hub", "ok", f"hub {endpoint} reachable")]


def cache_dirs() -> dict[str, Path]:
    home = Path(os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "huggingface")
    hub = Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or home / "hub")
    datasets = Path(os.environ.get("HF_DATASETS_CACHE") or home / "datasets")
    r1h = settings.get("R1H_GRADER_HOME")
    return {"HF_HOME": home, "hub cache": hub, "datasets cache": datasets, "r1h graders": r1h, "runs (cwd)": Path.cwd()}


def check_settings(environ: dict[str, str] | None = None) -> list[Finding]:
    """Each ``R1H_*`` variable set: its value; a bad value blocks (a lenient one warns); an unknown name warns."""
    out = []
    for name, raw, problem in settings.current(environ):
        spec = settings.SETTINGS.get(name)
        if problem is None:
            out.append(Finding("settings", "info", f"{name}={raw}"))
        elif spec is None:
            close = difflib.get_close_matches(name, list(settings.SETTINGS), n=1)
            out.append(Finding("settings", "warn", problem, f"did you mean {close[0]}?" if close else
                               "docs/settings.md lists them"))
        else:
            level, used = ("warn", f" (ignored: {settings.shown(spec)} is used)") if spec.lenient else ("fail", "")
            out.append(Finding("settings", level, problem + used, "docs/settings.md says what it takes"))
    return out


def free_gib(path: Path) -> float | None:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free / 2**30
    except OSError:
        return None


def check_caches(min_free_gib: float = MIN_FREE_GIB) -> list[Finding]:
    """Where the caches are and the free disk under them (one line per filesystem)."""
    groups: dict[Any, list[str]] = {}
    free_by: dict[Any, float | None] = {}
    for name, path in cache_dirs().items():
        free = free_gib(path)
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            key: Any = os.stat(probe).st_dev
        except OSError:
            key = str(path)
        groups.setdefault(key, []).append(f"{name} {path}")
        free_by[key] = free
    out = []
    for key, names in groups.items():
        free = free_by[key]
        text = f"{'?' if free is None else f'{free:.1f}'} GiB free for {', '.join(names)}"
        if free is not None and free < min_free_gib:
            out.append(Finding("disk", "warn", f"{text}, below {min_free_gib:g} GiB; checkpoints and the hub cache "
                               "need tens of GiB", "free space, or point HF_HOME / --output at a larger disk"))
        else:
            out.append(Finding("disk", "ok", text))
    return out


# -- the whole report -----------------------------------------------------------------------------------------------------
def run(needs: list[str] | None = None, *, hub_timeout: float = HUB_TIMEOUT,
        torch_timeout: float = stk.TORCH_PROBE_TIMEOUT, import_timeout: float = VLLM_IMPORT_TIMEOUT) -> dict[str, Any]:
    """Every check, the stack and the exit code, as a JSON-ready dict."""
    needs = list(dict.fromkeys(needs or []))
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        from r1h.harness.core.errors import ConfigError

        raise ConfigError(f"--need {unknown[0]}: known needs are {', '.join(NEEDS)}")
    libs = stk.libraries()
    with ThreadPoolExecutor(max_workers=3) as pool:
        torch_f = pool.submit(stk.probe_torch, None, torch_timeout) if "torch" in libs else None
        vllm_f = pool.submit(probe_import, "vllm", import_timeout) if "vllm" in libs else None
        hub_f = pool.submit(check_hub, hub_timeout)
        probe = torch_f.result() if torch_f else None
        vllm_error = vllm_f.result() if vllm_f else None
        hub = hub_f.result()
    findings = (check_libraries(libs) + check_torch(libs, probe) + check_vllm(libs, vllm_error, "vllm" in needs)
                + check_needs(libs, needs) + hub + check_caches() + check_settings())
    stack = {"system": stk.system(), "libraries": libs, "torch": probe}
    if not (probe or {}).get("accelerators"):
        smi = stk.nvidia_smi()
        if smi:
            stack["accelerators_smi"] = smi
            names = sorted({d["name"] for d in smi})
            findings.append(Finding("accelerators", "info", f"nvidia-smi lists {len(smi)} x {', '.join(names)}"
                                    + ("" if "torch" in libs else " (torch is not installed)")))
    return {"stack": stack, "findings": [asdict(f) for f in findings], "exit_code": exit_code(findings)}


def render(report: dict[str, Any]) -> str:
    """One screen of text: system, libraries, then each finding (problems with their fix)."""
    system = report["stack"]["system"]
    lines = [f"r1h doctor: Python {system['python']} ({system['implementation']}) on {system['os']}", "", "libraries:"]
    libs = report["stack"]["libraries"]
    width = max((len(n) for n in libs), default=8)
    for name, lib in libs.items():
        build = lib["build"] or "pypi"
        mark = "  vendor build" if lib["vendor"] else ""
        dist = f" ({lib['dist']})" if stk.norm_name(lib["dist"]) != stk.norm_name(name) else ""
        lines.append(f"  {name:<{width}}  {lib['version']:<24} {build}{dist}{mark}")
    absent = [d for d, _ in stk.LIBS if d not in libs]
    if absent:
        import textwrap

        lines += textwrap.wrap(f"not installed: {', '.join(absent)}", 118, initial_indent="  ",
                               subsequent_indent="    ")
    lines += ["", "checks:"]
    marks = {"ok": "ok  ", "info": "info", "warn": "WARN", "fail": "FAIL"}
    for f in report["findings"]:
        if f["level"] == "info" and f["check"] in libs and "vendor build" in f["message"]:
            continue  # already marked in the table
        fix = f" -> fix: {f['fix']}" if f["fix"] and f["level"] in ("warn", "fail") else ""
        lines.append(f"  {marks[f['level']]} {f['check']}: {f['message']}{fix}")  # one line per problem
    code = report["exit_code"]
    verdict = {0: "all good", 1: "something blocks a workflow", 2: "warnings only"}[code]
    lines += ["", f"{verdict} (exit {code})"]
    return "\n".join(lines) + "\n"
