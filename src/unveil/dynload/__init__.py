"""Detectors of dynamic library loading in source code, found without running it.

Each detector takes the text of one file and its path, and returns the
:class:`~unveil.model.LoadSite` values it found plus a list of problems (strings) for what it
could not analyse.  None of them imports, evaluates or runs the code, and none raises on bad
input: unparsable, binary, huge or hostile files become problems.

The detector modules are large; they are imported on first use (module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the types, without importing the large modules at run time
    from unveil.dynload.javascript import detect_binding_gyp, detect_javascript
    from unveil.dynload.python import detect_python
    from unveil.dynload.ruby import detect_ruby

__all__ = ["detect_binding_gyp", "detect_javascript", "detect_python", "detect_ruby"]

_WHERE = {
    "detect_binding_gyp": "unveil.dynload.javascript",
    "detect_javascript": "unveil.dynload.javascript",
    "detect_python": "unveil.dynload.python",
    "detect_ruby": "unveil.dynload.ruby",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
