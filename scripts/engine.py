"""The Pulumi engine as this project runs it offline: one place for the CLI's environment.

The Makefile (through ``bin/pulumi``), the tests and the pipeline all take the CLI's
environment from :func:`engine_env`, so a ``pulumi up`` typed by hand, one run by the
Automation API and one run by a test behave the same:

- the CLI ``make pulumi`` built into ``.tools/pulumi/bin/`` (else a ``pulumi`` on PATH);
- a file state backend in ``.bluegreen/pulumi-state/`` and a passphrase secrets
  provider whose passphrase is a generated file (``.bluegreen/pulumi-passphrase``,
  mode 600; never in argv or logs), unless the user chose a backend or passphrase;
- no update check and no automatic plugin downloads: the virtualenv holds the cloud
  SDKs, whose provider plugins cannot be downloaded here; a ``local`` stack needs none;
- the virtualenv's Python for the program, its dynamic providers and the policy pack.

A user with an ordinary Pulumi install and Pulumi Cloud sets ``PULUMI_BACKEND_URL``
(or runs ``pulumi login``) and ``PULUMI_CONFIG_PASSPHRASE`` or another secrets
provider; what they set is kept (see docs/engine.md).

``python -m scripts.engine ARGS`` runs the CLI with that environment (``bin/pulumi``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = ROOT / ".tools" / "pulumi" / "bin"

# Variables a user may set to use their own backend or secrets provider instead.
USER_BACKEND_VARS = ("PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN")
USER_PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")


class EngineMissingError(RuntimeError):
    """No Pulumi CLI here: ``make pulumi`` builds one."""


def pulumi_bin_dir() -> Path | None:
    """Where the CLI is: the project's own build first, then PATH; None when there is none."""
    if (TOOLS_BIN / "pulumi").exists() and os.access(TOOLS_BIN / "pulumi", os.X_OK):
        return TOOLS_BIN
    found = shutil.which("pulumi")
    return Path(found).resolve().parent if found else None


def cli_available() -> bool:
    return pulumi_bin_dir() is not None


def state_dir(project_dir: Path | str) -> Path:
    return Path(project_dir).resolve() / ".bluegreen"


def _passphrase_file(project_dir: Path | str) -> Path:
    path = state_dir(project_dir) / "pulumi-passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path


def _logged_in() -> bool:
    """``pulumi login`` leaves a current backend in ~/.pulumi/credentials.json."""
    home = Path(os.environ.get("PULUMI_HOME", Path.home() / ".pulumi"))
    try:
        return bool(json.loads((home / "credentials.json").read_text()).get("current"))
    except (OSError, ValueError):
        return False


def engine_env(project_dir: Path | str = ROOT, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment for the project at ``project_dir`` (a full environment)."""
    env = dict(os.environ if base is None else base)
    project = Path(project_dir).resolve()
    bin_dir = pulumi_bin_dir()
    venv_bin = Path(sys.executable).parent
    path = [str(p) for p in (bin_dir, venv_bin) if p is not None]
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    if not any(env.get(v) for v in USER_BACKEND_VARS) and not _logged_in():
        backend = state_dir(project) / "pulumi-state"
        backend.mkdir(parents=True, exist_ok=True)
        env["PULUMI_BACKEND_URL"] = backend.as_uri()
    if not any(env.get(v) for v in USER_PASSPHRASE_VARS):
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(_passphrase_file(project))
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    env.setdefault("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
    # The program, its dynamic providers and the policy pack run on this virtualenv's Python.
    env.setdefault("PULUMI_PYTHON_CMD", sys.executable)
    # grpcio's fork handlers only print warnings when the program starts subprocesses.
    env.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    return env


def pulumi_executable() -> Path:
    bin_dir = pulumi_bin_dir()
    if bin_dir is None:
        raise EngineMissingError("no Pulumi CLI: run `make pulumi` (builds it from Go modules) or install Pulumi")
    return bin_dir / "pulumi"


def main(argv: list[str]) -> int:
    try:
        executable = pulumi_executable()
    except EngineMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cwd = Path.cwd()
    project = cwd if (cwd / "Pulumi.yaml").is_file() else ROOT
    os.execve(str(executable), [str(executable), *argv], engine_env(project))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
