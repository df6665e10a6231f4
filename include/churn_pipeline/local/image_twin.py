"""The image twin: a virtual environment at ``<project>/.venv-container`` that holds what the SageMaker
scikit-learn image holds (Python 3.12 and the exact pins of ``requirements-container.txt``), so that
the local backend runs the job scripts with the versions SageMaker will run them with.

``make setup`` builds it with the interpreter ``find-python`` names; where no Python 3.12 exists,
setup says so in one line and the local runner falls back to the project's own environment, with a
warning in every job log (``job_python``). ``check`` compares the twin's installed versions with the
pins, which is what the test suite does too.

    python -m churn_pipeline.local.image_twin find-python [CANDIDATE]   # prints the interpreter, or why none
    python -m churn_pipeline.local.image_twin check                     # exit 1 when the twin drifted

Pure standard library: the local runner imports it at task run time, never the DAG file.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from churn_pipeline.domain.settings import PROJECT_DIR

TWIN_DIR = PROJECT_DIR / ".venv-container"
REQUIREMENTS_FILE = PROJECT_DIR / "requirements-container.txt"
INSTALLED_MARKER = ".installed"  # written by make once every pin is installed
PYTHON_VERSION = (3, 12)  # the image's: Amazon Linux 2023's python3.12
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")
_PROBE = "import json, sys; print(json.dumps([list(sys.version_info[:2]), sys.executable]))"
_INSTALLED = ("import json, importlib.metadata as m;"
              "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")


@dataclass(frozen=True)
class JobPython:
    """The interpreter the local runner starts jobs with, and whether it is the image twin's."""

    executable: Path
    is_twin: bool
    version: str  # Python's, e.g. 3.12.1
    warning: str | None = None  # said in every job log when the jobs cannot run in the twin


def twin_python(twin_dir: Path = TWIN_DIR) -> Path | None:
    """The twin's ``python3`` (the name the image's entry points use), when the twin is complete."""
    python = twin_dir / "bin" / "python3"
    return python if (twin_dir / INSTALLED_MARKER).is_file() and python.exists() else None


def _venv_python_version(twin_dir: Path) -> str:
    """The Python version a virtual environment was made with, from its ``pyvenv.cfg`` (no process)."""
    for line in (twin_dir / "pyvenv.cfg").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version_info", "version"):
            return value.strip()
    return "3.12"


def job_python(twin_dir: Path = TWIN_DIR) -> JobPython:
    """The twin's interpreter; else this environment's, with the warning every job log repeats."""
    python = twin_python(twin_dir)
    if python is not None:
        return JobPython(python, is_twin=True, version=_venv_python_version(twin_dir))
    return JobPython(Path(sys.executable), is_twin=False, version=platform.python_version(), warning=(
        f"WARNING: no image twin at {twin_dir} (make setup builds it where Python 3.12 exists), so this job runs "
        f"in the project's environment (Python {platform.python_version()}), not with the versions of the "
        "SageMaker image (requirements-container.txt): what passes here may still fail on SageMaker"))


# ---------------------------------------------------------------------------------- finding Python 3.12


def _candidates(preferred: Sequence[str], environ: Mapping[str, str]) -> list[tuple[str, dict[str, str]]]:
    """Commands that may start a Python 3.12, with the environment to start each in, best first.

    pyenv's shim for ``python3.12`` fails unless a 3.12 is selected, so each installed pyenv 3.12 is
    tried both through the shim (with ``PYENV_VERSION``) and by its own path.
    """
    plain = dict(environ)
    found: list[tuple[str, dict[str, str]]] = [(command, plain) for command in preferred if command]
    found.append(("python3.12", plain))
    pyenv_roots = [environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    for root in dict.fromkeys(root for root in pyenv_roots if root):
        for interpreter in sorted(glob.glob(f"{root}/versions/3.12*/bin/python3.12"), reverse=True):
            version = Path(interpreter).parent.parent.name
            found.append(("python3.12", {**plain, "PYENV_VERSION": version}))
            found.append((interpreter, plain))
    found += [(path, plain) for path in ("/usr/bin/python3.12", "/usr/local/bin/python3.12")]
    return found


def _uv_python(environ: Mapping[str, str]) -> str | None:
    """What ``uv python find 3.12`` names (uv sits beside this interpreter in the project's .venv)."""
    uv = Path(sys.executable).with_name("uv")
    command = str(uv) if uv.exists() else shutil.which("uv")
    if not command:
        return None
    try:
        completed = subprocess.run([command, "python", "find", "--no-python-downloads", "3.12"], capture_output=True,
                                   text=True, timeout=60, env=dict(environ))
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip() or None


def _probe(command: str, environ: Mapping[str, str]) -> Path | None:
    """The real interpreter behind ``command`` if it starts and is a Python 3.12."""
    try:
        completed = subprocess.run([command, "-c", _PROBE], capture_output=True, text=True, timeout=60,
                                   env=dict(environ))
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    try:
        version, executable = json.loads(completed.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return Path(executable) if tuple(version) == PYTHON_VERSION else None


def find_python(preferred: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> Path | None:
    """A working Python 3.12 on this machine: ``preferred`` first, then ``python3.12`` on the PATH,
    pyenv's 3.12 versions, the usual system paths, and ``uv python find``."""
    environ = os.environ if environ is None else environ
    for command, command_environ in _candidates(preferred, environ):
        found = _probe(command, command_environ)
        if found:
            return found
    uv_found = _uv_python(environ)
    return _probe(uv_found, environ) if uv_found else None


# ---------------------------------------------------------------------------------- pins and drift


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_versions(path: Path = REQUIREMENTS_FILE) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line (names normalised as pip does)."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if not match:
            raise ValueError(f"{path}: not an exact pin: {line!r}")
        pins[_normalise(match.group(1))] = match.group(2)
    return pins


def installed_versions(python: Path) -> dict[str, str]:
    """``name -> version`` of every distribution installed in the environment of ``python``."""
    completed = subprocess.run([str(python), "-c", _INSTALLED], capture_output=True, text=True, timeout=120,
                               check=True)
    return {_normalise(name): version for name, version in json.loads(completed.stdout).items()}


def version_drift(pinned: Mapping[str, str], installed: Mapping[str, str]) -> list[str]:
    """Every difference between the pins and what is installed, one line each (empty: none)."""
    problems = [f"{name}: pinned {version}, installed {installed.get(name, 'nothing')}"
                for name, version in sorted(pinned.items()) if installed.get(name) != version]
    problems += [f"{name}: installed {version}, not pinned" for name, version in sorted(installed.items())
                 if name not in pinned]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = arguments[0] if arguments else ""
    if command == "find-python":
        found = find_python(arguments[1:])
        if found is None:
            print("no Python 3.12 found (tried python3.12, pyenv's 3.12 versions, /usr/bin, uv python find): "
                  "no image twin, so the local backend runs its jobs in .venv and warns in every job log")
            return 1
        print(found)
        return 0
    if command == "check":
        python = twin_python()
        if python is None:
            print(f"no image twin at {TWIN_DIR}; make setup builds it")
            return 1
        drift = version_drift(pinned_versions(), installed_versions(python))
        print("\n".join(drift) if drift else f"{TWIN_DIR} holds exactly the pins of {REQUIREMENTS_FILE.name}")
        return 1 if drift else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
