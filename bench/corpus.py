"""Fetch the real-package corpus used by unveil's benchmarks and slow tests.

The script is idempotent and uses only the standard library.  Running it

1. downloads the pinned manylinux x86_64 CPython 3.11 wheels listed in
   ``PINS`` into ``<cache>/wheels`` with
   ``pip download --only-binary=:all: --no-deps`` (a wheel already present
   is not downloaded again);
2. creates the virtual environment ``<cache>/venv-wheels`` and installs
   exactly those wheel files into it with ``pip install --no-deps
   --no-index`` (packages already installed at the pinned version are left
   alone);
3. prints the paths, plus the number and total size of ELF files in the
   venv.

``<cache>`` is ``~/.cache/unveil-tests`` unless ``$UNVEIL_TESTS_CACHE`` or
``--cache-dir`` says otherwise.

torch is pinned to the CPU build ``2.13.0+cpu``.  On the project's machines
that wheel (about 190 MB) is on local disk, in the ``find-links`` directory
of the machine-wide pip configuration (``/opt/wheels``, see ``pip config
list``), so pip takes it from there.  Pinning the ``+cpu`` local version
label, rather than plain ``2.13.0``, guarantees that pip can never fall back
to the multi-GB CUDA build from PyPI, and ``--no-deps`` keeps the
``nvidia-*`` CUDA runtime wheels out as well.  If the CPU wheel is missing,
the script fails instead of downloading something else.

Usage::

    python bench/corpus.py            # download + venv + summary
    python bench/corpus.py --no-venv  # only download the wheels
    python bench/corpus.py --json     # machine-readable summary on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

#: Distribution name -> exact version.  Current releases as of this writing,
#: each with a manylinux x86_64 wheel for CPython 3.11.
PINS: dict[str, str] = {
    "numpy": "2.4.6",
    "scipy": "1.17.1",
    "pillow": "13.0.0",
    "opencv-python-headless": "5.0.0.93",
    "pyarrow": "26.0.1",
    "h5py": "3.16.0",
    "grpcio": "1.85.1",
    # CPU build; lies in the machine's pip find-links dir (/opt/wheels).
    "torch": "2.13.0+cpu",
}

#: Target interpreter and platform tags passed to ``pip download`` so that
#: the downloaded set does not depend on the Python running this script.
PYTHON_VERSION = "3.11"
ABIS: tuple[str, ...] = ("cp311", "abi3", "none")
PLATFORMS: tuple[str, ...] = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)

ELF_MAGIC = b"\x7fELF"


def default_cache_dir() -> Path:
    """Return the corpus cache directory (``$UNVEIL_TESTS_CACHE`` wins)."""
    env = os.environ.get("UNVEIL_TESTS_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "unveil-tests"


def wheel_dir(cache: Path) -> Path:
    """Directory holding the downloaded wheels."""
    return cache / "wheels"


def venv_dir(cache: Path) -> Path:
    """Virtual environment with every pinned wheel installed."""
    return cache / "venv-wheels"


def normalize(name: str) -> str:
    """Normalize a distribution name the way wheel filenames spell it."""
    return re.sub(r"[-_.]+", "_", name).lower()


def find_wheel(directory: Path, name: str, version: str) -> Path | None:
    """Return the cached wheel for ``name==version``, if there is one."""
    prefix = f"{normalize(name)}-{version}-"
    for path in sorted(directory.glob("*.whl")):
        if path.name.lower().startswith(prefix.lower()):
            return path
    return None


def pip_download(directory: Path, name: str, version: str) -> None:
    """Download one pinned wheel, without its dependencies."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--only-binary=:all:",
        "--no-deps",
        "--dest",
        str(directory),
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
    ]
    for abi in ABIS:
        cmd += ["--abi", abi]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    cmd.append(f"{name}=={version}")
    print("+", " ".join(cmd[:4]), "...", cmd[-1], file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=sys.stderr)


def ensure_wheels(directory: Path) -> dict[str, Path]:
    """Make sure every pinned wheel is in ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    wheels: dict[str, Path] = {}
    for name, version in PINS.items():
        path = find_wheel(directory, name, version)
        if path is None:
            pip_download(directory, name, version)
            path = find_wheel(directory, name, version)
        if path is None:
            msg = f"pip did not produce a wheel for {name}=={version}"
            raise SystemExit(msg)
        if name == "torch" and "+cpu" not in path.name:
            msg = f"refusing non-CPU torch wheel {path}"
            raise SystemExit(msg)
        wheels[name] = path
    return wheels


def venv_python(env: Path) -> Path:
    """Return the interpreter of a virtual environment."""
    return env / "bin" / "python"


def installed_versions(env: Path) -> dict[str, str]:
    """Map normalized distribution name -> version installed in ``env``."""
    out = subprocess.run(
        [str(venv_python(env)), "-m", "pip", "list", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {normalize(d["name"]): d["version"] for d in json.loads(out)}


def ensure_venv(env: Path, wheels: dict[str, Path]) -> None:
    """Create ``env`` if needed and install any wheel not yet installed."""
    if not venv_python(env).exists():
        print(f"+ creating venv {env}", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
    have = installed_versions(env)
    missing = [
        wheels[name] for name, version in PINS.items() if have.get(normalize(name)) != version
    ]
    if not missing:
        return
    cmd = [
        str(venv_python(env)),
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-index",
        "--force-reinstall",
        *map(str, missing),
    ]
    print("+ pip install --no-deps", *(p.name for p in missing), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=sys.stderr)


def is_elf(path: Path) -> bool:
    """Whether ``path`` is a regular (non-symlink) file starting with ELF magic."""
    try:
        if path.is_symlink() or not path.is_file():
            return False
        with path.open("rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


@dataclass(frozen=True)
class ElfStats:
    """Count and total size of the ELF files under a directory."""

    count: int
    size: int


def elf_stats(root: Path) -> ElfStats:
    """Walk ``root`` without following symlinks and sum up its ELF files."""
    count = 0
    size = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if is_elf(path):
                count += 1
                size += path.stat().st_size
    return ElfStats(count, size)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--no-venv", action="store_true", help="only download the wheels")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    args = parser.parse_args(argv)
    cache: Path = args.cache_dir.expanduser().resolve()

    wheels = ensure_wheels(wheel_dir(cache))
    env = venv_dir(cache)
    stats: ElfStats | None = None
    if not args.no_venv:
        ensure_venv(env, wheels)
        stats = elf_stats(env)

    if args.json:
        summary = {
            "cache": str(cache),
            "wheels_dir": str(wheel_dir(cache)),
            "wheels": {name: str(path) for name, path in wheels.items()},
            "venv": None if args.no_venv else str(env),
            "elf_count": None if stats is None else stats.count,
            "elf_bytes": None if stats is None else stats.size,
        }
        print(json.dumps(summary, indent=2))
        return 0

    print(f"wheels: {wheel_dir(cache)}")
    for name, path in wheels.items():
        print(f"  {name:24} {path.stat().st_size / 1e6:9.1f} MB  {path}")
    if stats is not None:
        print(f"venv:   {env}")
        print(f"  ELF files: {stats.count}, {stats.size} bytes ({stats.size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
