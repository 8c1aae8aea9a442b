"""``--launcher accelerate``: re-run this very command under ``accelerate launch`` with a shipped (or given) config."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from r1h.harness.core.errors import ConfigError

LAUNCHED_ENV = "R1H_TRAIN_LAUNCHED"
# Options of `r1h train` that only concern the launcher (stripped from the re-executed command): name -> takes value
LAUNCH_OPTIONS = {
    "--launcher": True,
    "--accelerate-config": True,
    "--num-processes": True,
    "--cpu": False,
    "--main-process-port": True,
    "--accelerate-arg": True,
}


def accelerate_configs() -> list[str]:
    folder = resources.files("r1h.trainers").joinpath("accelerate")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def accelerate_config_path(name_or_path: str) -> str:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return str(path)
    entry = resources.files("r1h.trainers").joinpath("accelerate", f"{name_or_path}.yaml")
    if not entry.is_file():
        raise ConfigError(
            f"unknown accelerate config {name_or_path!r}: not a file and not one of {', '.join(accelerate_configs())}"
        )
    return str(entry)


def strip_launch_options(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in LAUNCH_OPTIONS:
            skip = LAUNCH_OPTIONS[name] and "=" not in arg
            continue
        out.append(arg)
    return out


def launch_command(workflow: str, argv: list[str], config: str, num_processes: int | None = None,
                   cpu: bool = False, main_process_port: int | None = None,
                   extra: tuple[str, ...] = ()) -> list[str]:
    """The ``accelerate launch`` argument list that re-runs ``r1h train <workflow> <argv>`` in each process."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config_path(config)]
    if num_processes:
        cmd += ["--num_processes", str(int(num_processes))]
    child = strip_launch_options(argv)
    if cpu and "use_cpu=true" not in child:  # (given already: once, as a key given twice is refused)
        # accelerate's own --cpu launches one process (or needs mpirun); the torchrun launcher of a MULTI_GPU config
        # starts N processes, which train on the CPU (use_cpu) with a gloo process group.
        child += ["--set", "use_cpu=true"]
    if main_process_port:
        cmd += ["--main_process_port", str(int(main_process_port))]
    for item in extra:
        cmd += item.split(" ", 1) if item.startswith("--") and " " in item else [item]
    cmd += ["-m", "r1h.harness.cli.main", "train", workflow, *child]
    return cmd


def run_launched(cmd: list[str]) -> int:
    env = dict(os.environ)
    env[LAUNCHED_ENV] = "1"
    print("r1h train: " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, env=env, check=False).returncode  # list args, never a shell
