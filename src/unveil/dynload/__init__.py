"""Detectors of dynamic library loading in source code, found without running it.

Each detector takes the text of one file and its path, and returns the
:class:`~unveil.model.LoadSite` values it found plus a list of problems (strings) for what it
could not analyse.  None of them imports, evaluates or runs the code, and none raises on bad
input: unparsable, binary, huge or hostile files become problems.
"""

from __future__ import annotations

from unveil.dynload.javascript import detect_binding_gyp, detect_javascript
from unveil.dynload.python import detect_python
from unveil.dynload.ruby import detect_ruby

__all__ = ["detect_binding_gyp", "detect_javascript", "detect_python", "detect_ruby"]
