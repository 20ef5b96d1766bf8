"""Synthesise minimal dynamic ELF files of any class, byte order and machine.

gcc here only targets x86-64 (and i386 through binutils), so big-endian and foreign-machine
files are written field by field from the ELF specification instead.
"""

from __future__ import annotations

import struct


def make_elf(*, bits: int = 64, little: bool = True, machine: int = 62,
             needed: tuple[str, ...] = (), soname: str | None = None,
             rpath: str | None = None, runpath: str | None = None, etype: int = 3,
             interp: str | None = None, notes: tuple[tuple[bytes, int, bytes], ...] = ()) -> bytes:
    e = "<" if little else ">"
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    strtab = b"\0"
    offsets: dict[str, int] = {}

    def add(s: str) -> int:
        nonlocal strtab
        if s not in offsets:
            offsets[s] = len(strtab)
            strtab += s.encode() + b"\0"
        return offsets[s]

    dyn: list[tuple[int, int]] = [(1, add(n)) for n in needed]
    if soname is not None:
        dyn.append((14, add(soname)))
    if rpath is not None:
        dyn.append((15, add(rpath)))
    if runpath is not None:
        dyn.append((29, add(runpath)))
    nphdr = 3 + (1 if interp else 0) + (1 if notes else 0)
    base = ehsize + nphdr * phentsize
    interp_bytes = (interp.encode() + b"\0") if interp else b""
    note_bytes = b""
    for owner, ntype, desc in notes:
        name = owner + b"\0"
        note_bytes += struct.pack(e + "III", len(name), len(desc), ntype)
        note_bytes += name + b"\0" * (-len(name) % 4) + desc + b"\0" * (-len(desc) % 4)
    interp_off = base
    note_off = interp_off + len(interp_bytes)
    str_off = note_off + len(note_bytes)
    str_off += -str_off % 8
    dyn_off = str_off + len(strtab)
    dyn_off += -dyn_off % 8
    dyn.append((5, str_off))   # DT_STRTAB (vaddr == offset: one identity-mapped segment)
    dyn.append((10, len(strtab)))
    dyn.append((0, 0))
    dfmt = e + ("qQ" if bits == 64 else "iI")
    dyn_bytes = b"".join(struct.pack(dfmt, t, v) for t, v in dyn)
    total = dyn_off + len(dyn_bytes)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + bytes(8)
    if bits == 64:
        hdr = ident + struct.pack(e + "HHIQQQIHHHHHH", etype, machine, 1, 0, ehsize, 0, 0,
                                  ehsize, phentsize, nphdr, 64, 0, 0)
    else:
        hdr = ident + struct.pack(e + "HHIIIIIHHHHHH", etype, machine, 1, 0, ehsize, 0, 0,
                                  ehsize, phentsize, nphdr, 40, 0, 0)

    def phdr(ptype: int, off: int, size: int, align: int) -> bytes:
        if bits == 64:
            return struct.pack(e + "IIQQQQQQ", ptype, 6, off, off, off, size, size, align)
        return struct.pack(e + "IIIIIIII", ptype, off, off, off, size, size, 6, align)

    ph = phdr(1, 0, total, 0x1000)
    if interp:
        ph += phdr(3, interp_off, len(interp_bytes), 1)
    if notes:
        ph += phdr(4, note_off, len(note_bytes), 4)
    ph += phdr(2, dyn_off, len(dyn_bytes), 8)
    ph += phdr(0x6474E551, 0, 0, 16)  # PT_GNU_STACK, for realism
    out = bytearray(hdr + ph)
    out += interp_bytes + note_bytes
    out += bytes(str_off - len(out)) + strtab
    out += bytes(dyn_off - len(out)) + dyn_bytes
    return bytes(out)
