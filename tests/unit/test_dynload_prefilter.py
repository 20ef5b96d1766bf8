"""The textual prefilter a source passes before it is parsed for dynamic loading
(``unveil.scan._worth_parsing``): cheap, and never in the way of a load site the Python
detector would find."""

from __future__ import annotations

import importlib
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unveil.dynload.python import detect_python

scan = importlib.import_module("unveil.scan")


def worth(src: str, path: str = "pkg/mod.py") -> bool:
    return bool(scan._worth_parsing(path, textwrap.dedent(src).encode()))


@pytest.mark.parametrize("src", [
    "import ctypes\nlib = ctypes.CDLL('libfoo.so.1')\n",
    "from ctypes import CDLL as C\nlib = C('libfoo.so.1')\n",
    "import ctypes\nlib = getattr(\n    ctypes.cdll, 'libfoo')\n",
    "import ctypes\nctypes.CDLL(None, use_errno=True)\n",
    "from numpy import ctypeslib\nctypeslib.load_library('libfoo', '.')\n",
    "import numpy as np\nnp.ctypeslib.load_library('libfoo', '.')\n",
    "from .util import load_library\nload_library('libfoo.so')\n",
    "import os\nos.add_dll_directory(d)  # comment after code\n",
    "# a comment\rimport ctypes\rctypes.CDLL('libfoo.so')\r",
    "x = 1; import ctypes; ctypes.CDLL('libfoo.so')\n",
])
def test_sources_with_a_loader_pass(src: str) -> None:
    assert worth(src)


@pytest.mark.parametrize("src", [
    "x = 1\n",
    "# ctypes.CDLL('libfoo.so') in a comment\n",
    "    # os.add_dll_directory(d)\n",
    "import ctypes\nprocess = ctypes.CDLL(None)\n",
    "import ctypes\nprocess = ctypes.CDLL( None )\n",
    "import torch\ntorch.ops.load_library(path)\n",
])
def test_sources_without_one_do_not(src: str) -> None:
    assert not worth(src)


_LINES = [
    "import ctypes\n",
    "import numpy as np\n",
    "from ctypes import CDLL as C, cdll\n",
    "# ctypes.CDLL('libcomment.so')\n",
    "x = ctypes.CDLL(None)\n",
    "y = ctypes.CDLL('liby.so')\n",
    "z = C('libz.so')\n",
    "w = cdll.libw\n",
    "v = np.ctypeslib.load_library('libv', '.')\n",
    "u = torch.ops.load_library('libu.so')\n",
    "t = ctypes.util.find_library('t')\n",
    "s = ctypes.CDLL(None, mode=ctypes.RTLD_GLOBAL)\n",
    "def f(n):\n    return ctypes.WinDLL(n)\n",
    "f('libf.dll')\n",
    "q = '''\n# CDLL('in a string')\n'''\n",
]


@settings(max_examples=200, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_LINES), max_size=8), st.sampled_from(["\n", "\r\n", "\r"]))
def test_never_in_the_way_of_a_load_site(lines: list[str], newline: str) -> None:
    src = "".join(lines).replace("\n", newline)
    sites, _ = detect_python(src, "pkg/mod.py")
    if sites:
        assert scan._worth_parsing("pkg/mod.py", src.encode())
