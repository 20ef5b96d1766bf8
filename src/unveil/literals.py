"""A fixed set of byte strings looked for in one pass, by Hyperscan when it can run here.

Used where many literals are searched in the same bytes: the loader words in Python
sources (:mod:`unveil.scan`), the keywords of the identification rules
(:mod:`unveil.identify.banners`).  Hyperscan is imported on first use, so a scan that needs
neither never loads it.  Without it (no wheel for the platform, or a CPU it cannot use)
:attr:`LiteralSearch.db` is None and callers search literal by literal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LiteralSearch"]

#: ``(index, start, end, flags, context)``: Hyperscan's match callback
MatchHandler = Callable[[int, int, int, int, object], Any]


class LiteralSearch(threading.local):
    """The literals ``words`` (none empty, none holding a NUL: the binding passes them as
    C strings) compiled into one Hyperscan database per thread (a database's scratch space
    serves one scan at a time), on the thread's first use.  ``first_only``: each literal is
    reported at its first match only (``HS_FLAG_SINGLEMATCH``)."""

    def __init__(self, words: tuple[bytes, ...], *, first_only: bool = False) -> None:
        self.words = words
        self._first_only = first_only
        self._ready = False
        self._db: Any = None

    @property
    def db(self) -> Any:
        """The compiled database, or None when Hyperscan cannot be used (or no words)."""
        if not self._ready:
            self._ready = True
            if not self.words:
                return None
            try:
                import hyperscan  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

                flag = hyperscan.HS_FLAG_SINGLEMATCH if self._first_only else 0
                db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                db.compile(expressions=list(self.words), ids=list(range(len(self.words))),
                           elements=len(self.words), flags=[flag] * len(self.words),
                           literal=True)
            except Exception:  # not installed, or unusable here (no SSSE3...)
                return None
            self._db = db
        return self._db

    def scan(self, data: bytes, on_match: MatchHandler) -> bool:
        """Call ``on_match`` for each match in ``data``; False (and no call) when there is
        no database to ask."""
        db = self.db
        if db is None:
            return False
        db.scan(data, match_event_handler=on_match)
        return True
