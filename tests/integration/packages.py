"""Builders for realistic package layouts made of real compiled binaries."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from tests.conftest import Builder


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(path: Path, members: dict[str, bytes], dist: str = "pkg",
                version: str = "1.0") -> Path:
    info = f"{dist}-{version}.dist-info"
    members = dict(members)
    meta = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    members[f"{info}/METADATA"] = meta.encode()
    members[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: unveil-tests\nRoot-Is-Purelib: "
                                b"false\nTag: cp311-cp311-linux_x86_64\n")
    record = [_record_line(n, d) for n, d in members.items()] + [f"{info}/RECORD,,"]
    members[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def vendored_wheel(build: Builder, out: Path) -> Path:
    """An auditwheel-like wheel: an extension with RPATH $ORIGIN/../pkg.libs and a vendored
    library; a second extension that needs a library nobody ships; a third that expects
    libcublas from an nvidia distribution through a relative RPATH."""
    vend = build.lib("w/libvend-0a1b2c3d.so.1", soname="libvend-0a1b2c3d.so.1")
    ext = build.lib("w/_ext.cpython-311-x86_64-linux-gnu.so", soname="",
                    needs=[str(vend)], rpath="$ORIGIN/../pkg.libs")
    gone = build.lib("w/libgone.so.3", soname="libgone.so.3")
    lonely = build.lib("w/_lonely.cpython-311-x86_64-linux-gnu.so", soname="",
                       needs=[str(gone)])
    cublas = build.lib("w/libcublas.so.12", soname="libcublas.so.12")
    gpu = build.lib("w/_gpu.cpython-311-x86_64-linux-gnu.so", soname="", needs=[str(cublas)],
                    runpath="$ORIGIN/../nvidia/cublas/lib")
    return write_wheel(out, {
        "pkg/__init__.py": b"",
        "pkg/_ext.cpython-311-x86_64-linux-gnu.so": ext.read_bytes(),
        "pkg/_lonely.cpython-311-x86_64-linux-gnu.so": lonely.read_bytes(),
        "pkg/_gpu.cpython-311-x86_64-linux-gnu.so": gpu.read_bytes(),
        "pkg.libs/libvend-0a1b2c3d.so.1": vend.read_bytes(),
    })


def install(wheel: Path, site: Path) -> None:
    """A minimal installer: unpack into site-packages (enough for RECORD-based tests)."""
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
