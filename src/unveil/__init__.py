"""unveil: find the binary dependencies hiding in software packages.

The public API is :func:`scan` (or :class:`Scanner` for several targets) with a
:class:`ScanConfig`; results are the frozen dataclasses of :mod:`unveil.model`.  Nothing
scanned is ever executed or imported.
"""

from unveil.config import GlibcPlatform, ScanConfig
from unveil.errors import FormatError, LoaderError, SourceError, TargetError, UnveilError
from unveil.model import (
    Attempt,
    Binary,
    Edge,
    EdgeClass,
    Outcome,
    Problem,
    Resolution,
    Rule,
    ScannedBinary,
    ScanResult,
    TargetResult,
    Verdict,
)
from unveil.scan import Scanner, scan

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "Binary",
    "Edge",
    "EdgeClass",
    "FormatError",
    "GlibcPlatform",
    "LoaderError",
    "Outcome",
    "Problem",
    "Resolution",
    "Rule",
    "ScanConfig",
    "ScanResult",
    "ScannedBinary",
    "Scanner",
    "SourceError",
    "TargetError",
    "TargetResult",
    "UnveilError",
    "Verdict",
    "__version__",
    "scan",
]
