"""The data files shipped inside the package (rule tables, indexes), read through the
package's own loader: from an installed wheel, an editable checkout or a zip import alike.

:func:`pkgutil.get_data`, not :mod:`importlib.resources`: importing the latter (it imports
:mod:`tempfile`, :mod:`pathlib` and more) took 16 ms of an identifying scan's start-up,
pkgutil 2 ms."""

from __future__ import annotations

import pkgutil

__all__ = ["read_bytes", "read_text"]


def read_bytes(name: str) -> bytes:
    """The bytes of ``unveil/data/<name>``."""
    data = pkgutil.get_data("unveil", f"data/{name}")
    if data is None:  # a loader that cannot read data files
        raise FileNotFoundError(f"unveil's data file {name} cannot be read by its loader")
    return data


def read_text(name: str) -> str:
    """The text (UTF-8) of ``unveil/data/<name>``."""
    return read_bytes(name).decode("utf-8")
