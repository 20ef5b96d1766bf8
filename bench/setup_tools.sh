#!/usr/bin/env bash
# Install the comparison tools that bench/compare.py times against unveil.
# Idempotent: re-running only checks that everything is in place.
#
#   - pax-utils (Debian): /usr/bin/lddtree, a Python script that needs
#     python3-pyelftools and must run under Debian's /usr/bin/python3
#     (`#!/usr/bin/env python3` would pick a pyenv python without elftools).
#   - time (Debian): /usr/bin/time, for manual `-v` peak-RSS checks.
#   - auditwheel and elfdeps (PyPI) in their own venv, by default
#     ~/.cache/unveil-tests/venv-tools, so the system Python stays clean.
#   - unveil itself (editable, from this checkout) in a venv of its own,
#     ~/.cache/unveil-tests/venv-unveil, which bench/compare.py runs: each Python
#     tool then starts from a clean venv, and none pays for what an interpreter's
#     site-packages runs at start-up (this machine's pyenv Python has a .pth that
#     imports certifi, ~40 ms per process).
#
# Usage: bash bench/setup_tools.sh        (as root, or with sudo available)
# Env:   UNVEIL_TESTS_CACHE  cache dir (default ~/.cache/unveil-tests)
#        PYTHON              interpreter for the venv (default python3.11/python3)
set -euo pipefail

AUDITWHEEL_VERSION=6.8.2
ELFDEPS_VERSION=0.4.0

CACHE="${UNVEIL_TESTS_CACHE:-$HOME/.cache/unveil-tests}"
TOOLS_VENV="$CACHE/venv-tools"
UNVEIL_VENV="$CACHE/venv-unveil"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_pkgs=()
dpkg -s pax-utils >/dev/null 2>&1 || apt_pkgs+=(pax-utils)
dpkg -s python3-pyelftools >/dev/null 2>&1 || apt_pkgs+=(python3-pyelftools)
dpkg -s time >/dev/null 2>&1 || apt_pkgs+=(time)
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
    echo "+ apt-get install ${apt_pkgs[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_pkgs[@]}"
fi

if [ ! -x "$TOOLS_VENV/bin/python" ]; then
    echo "+ creating $TOOLS_VENV with $PYTHON" >&2
    mkdir -p "$CACHE"
    "$PYTHON" -m venv "$TOOLS_VENV"
fi

want="auditwheel==$AUDITWHEEL_VERSION elfdeps==$ELFDEPS_VERSION"
have="$("$TOOLS_VENV/bin/python" -m pip freeze 2>/dev/null | { grep -Ei '^(auditwheel|elfdeps)==' || true; } | sort | tr '\n' ' ' | sed 's/ $//')"
if [ "$have" != "$want" ]; then
    echo "+ pip install $want" >&2
    "$TOOLS_VENV/bin/python" -m pip install -q "auditwheel==$AUDITWHEEL_VERSION" "elfdeps==$ELFDEPS_VERSION"
fi

if [ ! -x "$UNVEIL_VENV/bin/python" ]; then
    echo "+ creating $UNVEIL_VENV with $PYTHON" >&2
    "$PYTHON" -m venv "$UNVEIL_VENV"
fi
if ! "$UNVEIL_VENV/bin/python" -c 'import unveil' 2>/dev/null; then
    echo "+ pip install -e $REPO (into $UNVEIL_VENV)" >&2
    "$UNVEIL_VENV/bin/python" -m pip install -q -e "$REPO"
fi

# Smoke checks: fail loudly if a tool is unusable.
/usr/bin/python3 /usr/bin/lddtree /bin/true >/dev/null
"$TOOLS_VENV/bin/auditwheel" --version
"$TOOLS_VENV/bin/python" -c 'import importlib.metadata as m; print("elfdeps", m.version("elfdeps"))'
echo "lddtree (pax-utils $(dpkg-query -W -f='${Version}' pax-utils)): /usr/bin/python3 /usr/bin/lddtree"
"$UNVEIL_VENV/bin/python" -m unveil --version
echo "tools venv: $TOOLS_VENV"
echo "unveil venv: $UNVEIL_VENV"
