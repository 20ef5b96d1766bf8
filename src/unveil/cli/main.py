"""The ``unveil`` command: a thin shell over :mod:`unveil` that parses, renders and exits.

Exit codes: 0 ok; 1 findings matched ``--fail-on`` (or ``ldd`` found a file it could not
resolve, as ``ldd`` does); 2 usage or input error (and any problem under ``--strict``);
``trace`` passes the command's own status through (124 when ``--timeout`` stopped it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from unveil import __version__
from unveil.cli.host import detect_host
from unveil.config import ScanConfig
from unveil.errors import TargetError, UnveilError
from unveil.model import (
    Binary,
    BinaryFormat,
    EdgeClass,
    Outcome,
    ProblemKind,
    ScanResult,
    TargetKind,
)
from unveil.report.json import _attempt, dumps
from unveil.scan import Scanner, flavor_of
from unveil.sources.fs import HostFS, Kind

if TYPE_CHECKING:
    from datetime import datetime

    from unveil.loader.explain import Explanation
    from unveil.loader.glibc import GlibcLoader

__all__ = ["entry", "main"]

#: the width of text output that is not a terminal: wide enough that nothing wraps
UNWRAPPED = 100_000

_CLASSES: dict[str, object] = {c.value: c for c in EdgeClass}
_CLASSES.update({f"dlopen-{c.value}": c for c in EdgeClass})
_CLASSES.update({c: c for c in ("phantom", "bundled-unrecorded")})


def _why_arguments(w: argparse.ArgumentParser) -> None:
    w.add_argument("library", help="the library as requested (libz.so.1), or by the name a "
                                    "repair tool hashed (libpq.dll for libpq-<hash>.dll)")
    w.add_argument("target", nargs="?",
                   help="a wheel, environment, directory or file to explain it in")
    w.add_argument("--from", dest="from_file",
                   help="the binary that needs it (a path, or a member path in TARGET)")
    w.add_argument("--root", default="/", help=(
        "the target system's root: the target and every path are taken inside it"))
    w.add_argument("--format", choices=["text", "json"], default="text",
                   help="text (default) or one JSON document per explanation")


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size() tells it ($COLUMNS, the terminal
    of standard output, else 80), without importing shutil (see _Parser)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    out = sys.__stdout__
    try:
        columns = os.get_terminal_size(out.fileno()).columns if out is not None else 0
    except (AttributeError, ValueError, OSError):
        return 80
    return columns if columns > 0 else 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         width if width is not None else _columns() - 2)


class _Parser(argparse.ArgumentParser):
    """argparse with a help formatter that finds the terminal's width itself: argparse
    makes one per add_argument (to check metavars), and its own imports shutil (with bz2,
    lzma and fnmatch: ~3.5 ms of every command's start-up) to ask."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    if args.command != "why":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # argparse gives positionals their values in one go: in `why LIB --from M TARGET` the
    # TARGET after the option was left over.  Read the sub-command's arguments intermixed.
    w = _Parser(prog="unveil why")
    _why_arguments(w)
    return w.parse_intermixed_args(argv[argv.index("why") + 1:],
                                   argparse.Namespace(command="why"))


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="unveil", description=(
        "Find the binary dependencies hiding in software packages, resolved exactly as the "
        "real loader would, without running anything."))
    p.add_argument("--version", action="version", version=f"unveil {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("scan", help="scan wheels, environments, directories or files")
    s.add_argument("targets", nargs="*", help="default: this Python's environment")
    s.add_argument("--format", default="text",
                   choices=["text", "json", "cyclonedx", "cyclonedx-1.7", "spdx", "upstreams",
                            "upstreams-json", "external"],
                   help="text for people; json (docs/json-schema.md); cyclonedx / spdx SBOMs; "
                        "upstreams: the C/C++ projects behind it; external: the PEP 725 "
                        "[external] table to add to pyproject.toml")
    s.add_argument("-o", "--output", help="write the report to this file")
    s.add_argument("--indent", type=_indent, default=None,
                   help="indent JSON output by N spaces (JSON formats: json, cyclonedx*, spdx, "
                        "upstreams-json; default: compact JSON, indented SBOMs)")
    s.add_argument("--root", default="/", help="the target system's root (sysroot/rootfs)")
    s.add_argument("--ld-library-path", default=None,
                   help="LD_LIBRARY_PATH the loader would see (default: unset)")
    s.add_argument("--fail-on", default="",
                   help="comma-separated classes that make the exit code 1: "
                        + ", ".join(_CLASSES))
    s.add_argument("--strict", action="store_true", help="any problem is fatal (exit 2)")
    s.add_argument("-v", "--verbose", action="store_true", help="show how each edge resolved")
    s.add_argument("--macos-arch", default=None, choices=("arm64", "arm64e", "x86_64", "i386"),
                   help="Mach-O slice to resolve (default: from the wheel's platform tag; "
                        "arm64 for universal2)")
    s.add_argument("--no-identify", action="store_true",
                   help="skip identifying upstream projects and versions")
    s.add_argument("--no-dynload", action="store_true",
                   help="skip looking for dynamic loading in sources and .note.dlopen")
    s.add_argument("--libc", choices=["auto", "glibc", "musl"], default="auto",
                   help="Linux loader for ELF files (default: from PT_INTERP, libc and tags)")

    d = sub.add_parser("ldd", help="a safe ldd: never runs the file")
    d.add_argument("files", nargs="+", help="programs or libraries, as ldd takes them")
    d.add_argument("--root", default="/", help=(
        "the target system's root (container rootfs or sysroot): FILE and every path are "
        "taken inside it, as after chroot (give FILE as it is spelled inside the root)"))

    _why_arguments(sub.add_parser("why", help="explain how one library is (not) found"))
    sb = sub.add_parser("sbom", help="write a CycloneDX SBOM into a wheel (PEP 770)")
    sb.add_argument("--inject", dest="wheel", required=True, metavar="WHEEL",
                    help="the wheel to write a copy of, with the SBOM in its .dist-info/sboms/")
    sb.add_argument("-o", "--output",
                    help="the new wheel or a directory for it (default: with-sbom/ beside it)")
    sb.add_argument("--root", default="/", help=(
        "the target system's root, for resolving the wheel's system dependencies"))

    tr = sub.add_parser("trace", help="run a command and record what it really loads "
                                      "(the one command that runs anything: yours)",
                        epilog="exit status: the command's own; 124 when --timeout stopped "
                               "it; 2 for a usage error")
    tr.add_argument("--format", choices=["text", "json"], default="text",
                    help="text on stderr (the command's own output stays on stdout), or JSON "
                         "on stdout (the command's output then goes to stderr)")
    tr.add_argument("--timeout", type=_positive_seconds, default=300.0,
                    help="seconds before the command is stopped (default 300)")
    tr.add_argument("--no-python-audit", action="store_true",
                    help="do not add the ctypes.dlopen audit hook to Python commands")
    tr.add_argument("--compare", metavar="TARGET",
                    help="join the observed loads with a static scan of TARGET")
    tr.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    return p


def _cmd_trace(args: argparse.Namespace) -> int:
    from unveil.trace import JoinStatus, join_with_static, run_trace

    argv = list(args.cmd)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        _error("trace needs a command: unveil trace -- COMMAND [ARGS...]")
        return 2
    result = run_trace(argv, env=dict(os.environ), cwd=os.getcwd(), timeout=args.timeout,
                       python_audit=not args.no_python_audit,
                       stdout=2 if args.format == "json" else None)
    joined = None
    if args.compare:
        cfg = _config("/", ld_library_path=os.environ.get("LD_LIBRARY_PATH"), from_env=False)
        scanned = Scanner(cfg).scan(args.compare)
        paths = {e.resolution.path for e in scanned.edges if e.resolution.path}
        present = {b.loader_path for t in scanned.targets for b in t.binaries}
        names = {e.resolution.request for e in scanned.edges}
        stems: set[str] = set()
        for t in scanned.targets:
            for d in t.dynamic_loads:
                (stems if d.site.stem else names).update(d.site.names)
                paths.update(e.resolution.path for e in d.edges if e.resolution.path)
        # The scan's edges are each binary's own requests; ld.so loads their closure (curl's
        # libssl needs libcrypto): what the closure of a binary on disk holds is predicted.
        closure = _loader(cfg)
        for t in scanned.targets:
            for b in t.binaries:
                if (b.binary.format is BinaryFormat.ELF and flavor_of(b.binary) == "glibc"
                        and b.location.container is None):
                    for o in closure.load(b.loader_path).objects:
                        if o.path and o.role not in ("main", "vdso", "rtld"):
                            paths.add(o.path)
                            names.add(o.name)
        joined = join_with_static(result.loads, paths, names, stems, present)
    loads = [{"name": x.name, "path": x.path, "real_path": x.real_path, "kind": x.kind.value,
              "requester": x.requester, "pid": x.pid, "outcome": x.outcome.value,
              "call_site": (f"{x.call_site.file}:{x.call_site.line}" if x.call_site else None)}
             for x in result.loads]
    if args.format == "json":
        doc: dict[str, object] = {
            "argv": list(result.argv), "exit_status": result.exit_status,
            "timed_out": result.timed_out, "loads": loads,
            "problems": [{"location": p.location, "message": p.message}
                         for p in result.problems]}
        if joined is not None:
            doc["join"] = [{"library": j.library, "status": j.status.value,
                            "predictions": list(j.predictions), "note": j.note}
                           for j in joined.libraries]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        out = sys.stderr
        out.write(f"unveil trace: {len(result.loads)} loads observed "
                  f"(exit status {result.exit_status})\n")
        for x in result.loads:
            site = f"  [{x.call_site.file}:{x.call_site.line}]" if x.call_site else ""
            out.write(f"  {x.kind.value:8} {x.name} => {x.path or 'not found'}"
                      f"  (by {x.requester or '?'}){site}\n")
        if joined is not None:
            gaps = joined.gaps
            out.write(f"seen but not predicted by the static scan: {len(gaps)}\n")
            for j in gaps:
                out.write(f"  GAP {j.library}\n")
            for j in joined.with_status(JoinStatus.PREDICTED_NOT_SEEN):
                out.write(f"  not triggered: {j.library}\n")
        for p in result.problems:
            out.write(f"  problem: {p.message}\n")
    if result.timed_out:
        return 124
    return result.exit_status if result.exit_status is not None else 2


def _config(root: str, *, ld_library_path: str | None, from_env: bool) -> ScanConfig:
    if not os.path.isdir(root):
        raise TargetError(f"--root {root}: not a directory")
    cfg = detect_host(root, use_ld_library_path=from_env)
    if not from_env:
        cfg = replace(cfg, ld_library_path=ld_library_path)
    return cfg


def _render_record(result: ScanResult, fmt: str, indent: int | None) -> str:
    text = _render_format(result, fmt, indent)
    if indent is not None and fmt != "json" and (fmt.startswith(("cyclonedx", "spdx"))
                                                  or fmt == "upstreams-json"):
        text = json.dumps(json.loads(text), indent=indent) + "\n"
    return text


def _indent(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of spaces: {text!r}") from None
    if not 0 <= value <= 16:
        raise argparse.ArgumentTypeError(f"indent must be 0 to 16 spaces, not {value}")
    return value


def _render_format(result: ScanResult, fmt: str, indent: int | None) -> str:
    if fmt == "json":
        return dumps(result, __version__, indent=indent)
    if fmt.startswith("cyclonedx"):
        from unveil.report.cyclonedx import to_cyclonedx

        return to_cyclonedx(result, __version__, spec="1.7" if fmt.endswith("1.7") else "1.6",
                            timestamp=_source_date())
    if fmt == "spdx":
        from unveil.report.spdx import read_sha1, to_spdx

        return to_spdx(result, __version__, sha1=read_sha1(result), created=_source_date())
    if fmt.startswith("upstreams"):
        from unveil.report.upstreams import upstreams_json, upstreams_text

        return upstreams_json(result) if fmt.endswith("json") else upstreams_text(result)
    from unveil.report.pep725 import suggest_external

    return suggest_external(result)


def _cmd_sbom(args: argparse.Namespace) -> int:
    from unveil.report.cyclonedx import to_cyclonedx
    from unveil.report.inject import inject_sbom

    # Everything about the input is checked before anything is written.
    if not os.path.isfile(args.wheel):
        _error(f"{args.wheel}: not a regular file")
        return 2
    cfg = replace(_config(args.root, ld_library_path=None, from_env=False), hashes=True)
    result = Scanner(cfg).scan(args.wheel)
    target = result.targets[0]
    if target.kind is not TargetKind.WHEEL or not target.distributions:
        _error(f"{args.wheel}: not a wheel (a zip archive with a .dist-info directory)")
        return 2
    # The wheel keeps its file name (it is part of the wheel format); it goes elsewhere.
    name = os.path.basename(args.wheel)
    out = args.output or os.path.join(os.path.dirname(os.path.abspath(args.wheel)),
                                      "with-sbom", name)
    if os.path.isdir(out) or not out.endswith(".whl"):
        out = os.path.join(out, name)
    if os.path.abspath(out) == os.path.abspath(args.wheel):
        _error("the output must be a new file (-o OUT.whl)")
        return 2
    sbom = to_cyclonedx(result, __version__, timestamp=_source_date())
    made = _missing_dirs(os.path.dirname(os.path.abspath(out)))
    try:
        for d in made:
            os.mkdir(d)
        written = inject_sbom(args.wheel, sbom, out)
    except OSError as e:
        _remove_dirs(made)
        _error(f"cannot write {out}: {e.strerror or e}")
        return 2
    except BaseException:
        _remove_dirs(made)  # (an error the caller reports) leaves nothing behind
        raise
    sys.stdout.write(f"{written}\n")
    return 0


def _source_date() -> datetime | None:
    """``SOURCE_DATE_EPOCH`` (reproducible builds): the time SBOMs say they were made."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value.isdigit():
        return None
    from datetime import UTC, datetime  # SBOM formats only: not at every start

    return datetime.fromtimestamp(int(value), tz=UTC)


def _missing_dirs(path: str) -> list[str]:
    """The directories that must be made for ``path`` to exist, outermost first."""
    out: list[str] = []
    while path and not os.path.exists(path):
        out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return out[::-1]


def _remove_dirs(made: list[str]) -> None:
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            return


def _loader(cfg: ScanConfig) -> GlibcLoader:
    from unveil.loader.glibc import GlibcLoader, load_cache
    from unveil.loader.store import BinaryStore

    fs = HostFS(cfg.root)
    store = BinaryStore(fs)
    cache, _problem = load_cache(fs, store, cfg.glibc)
    return GlibcLoader(fs, cfg.glibc, store, cache=cache, ld_library_path=cfg.ld_library_path,
                       cwd=cfg.cwd)


def _error(message: str) -> None:
    sys.stderr.write(f"unveil: {message}\n")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):  # (nan fails this too)
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _cmd_scan(args: argparse.Namespace) -> int:
    fail_on = {c.strip() for c in args.fail_on.split(",") if c.strip()}
    unknown = fail_on - set(_CLASSES)
    if unknown:
        _error(f"unknown class for --fail-on: {', '.join(sorted(unknown))}")
        return 2
    cfg = _config(args.root, ld_library_path=args.ld_library_path, from_env=False)
    cfg = replace(cfg, hashes=args.format.startswith("cyclonedx") or args.format == "spdx")
    cfg = replace(cfg, macos_arch=args.macos_arch, dynload=not args.no_dynload,
                  identify=not args.no_identify,
                  linux_libc=None if args.libc == "auto" else args.libc)
    targets = args.targets or [sys.prefix]
    progress = None
    if args.format == "text" and sys.stderr.isatty():
        # rich is imported only for people: JSON runs start faster without it.
        from rich.console import Console
        from rich.progress import Progress

        progress = Progress(console=Console(stderr=True), transient=True)
    try:
        if progress is not None:
            with progress:
                task = progress.add_task("scanning", total=None)

                def report(done: int, total: int, _what: str) -> None:
                    progress.update(task, completed=done, total=total)

                result = Scanner(replace(cfg, progress=report)).scan(*targets)
        else:
            result = Scanner(cfg).scan(*targets)
    except UnveilError as e:
        _error(str(e))
        return 2
    try:
        _write_scan(args, result)
    except OSError as e:
        _error(f"cannot write {args.output}: {e.strerror or e}")
        return 2
    absent = [t for t in targets if not os.path.lexists(t)]
    if absent:
        # A target that is not there is a usage error whatever the others gave (a mistyped
        # path, a glob that matched nothing): CI must not pass on it.
        for t in absent:
            _error(f"{t}: no such file or directory")
        return 2
    if args.strict and any(p.kind is not ProblemKind.NOTE for p in result.problems):
        return 2
    classes: Counter[str] = Counter(e.edge_class.value for e in result.edges)
    classes.update(f"dlopen-{e.edge_class.value}" for t in result.targets
                   for d in t.dynamic_loads for e in d.edges)
    classes.update(d.category for t in result.targets for d in t.declarations)
    matched = sorted(c for c in classes if c in fail_on)
    if matched:
        # (the output may be JSON or a file: the reason for the exit status goes to stderr)
        _error("--fail-on matched " + ", ".join(f"{c} ({classes[c]})" for c in matched))
        return 1
    return 0


def _write_scan(args: argparse.Namespace, result: ScanResult) -> None:
    if args.format != "text":
        text = _render_record(result, args.format, args.indent)
        if args.output:
            with open(args.output, "w", encoding="utf-8", errors="backslashreplace") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
    else:
        from rich.console import Console

        from unveil.cli.render import render_scan

        # Piped or written to a file, a line is never wrapped: a path cut in two is lost to
        # grep.  On a terminal rich fits the tree to its width.
        if args.output:
            with open(args.output, "w", encoding="utf-8", errors="backslashreplace") as f:
                render_scan(Console(file=f, width=UNWRAPPED, no_color=True), result,
                            args.verbose)
        else:
            console = Console(highlight=False)
            if not console.is_terminal:
                console = Console(highlight=False, width=UNWRAPPED)
            render_scan(console, result, args.verbose)


def _cmd_ldd(args: argparse.Namespace) -> int:
    """ldd, the script: its messages on stderr, word for word, and glibc's trace on stdout,
    for each file that one of the root's loaders would take (its RTLDLIST)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        # ldd's output is file names: written back as the bytes they are, as ld.so's is
        reconfigure(errors="surrogateescape")
    cfg = _config(args.root, ld_library_path=None, from_env=True)
    loader = _loader(cfg)
    status = 0
    many = len(args.files) > 1
    for f in args.files:
        if many:
            sys.stdout.write(f"{f}:\n")
        spelled = f if "/" in f else "./" + f
        target = spelled if spelled.startswith("/") else os.path.join(cfg.cwd, spelled)
        try:
            real = loader.fs.resolve(target)
        except UnveilError:
            real = None
        if real is None:
            sys.stderr.write(f"ldd: {spelled}: No such file or directory\n")
            status = 1
            continue
        if loader.fs.kind(real) is not Kind.FILE:
            sys.stderr.write(f"ldd: {spelled}: not regular file\n")
            status = 1
            continue
        stored = loader.store.get(real)
        b = stored.binary
        if stored.unreadable and stored.head == b"":
            sys.stderr.write(f"ldd: error: you do not have read permission for `{spelled}'\n")
            status = 1
            continue
        runs = _ldd_loader(cfg, loader, b) if b is not None and b.has_dynamic else None
        if runs is None:
            # no loader of the root verifies it: not ELF, static, or another architecture
            sys.stderr.write("\tnot a dynamic executable\n")
            status = 1
            continue
        if b is not None and flavor_of(b) == "musl":
            from unveil.loader.musl import MuslLoader

            result = MuslLoader(loader.fs, cfg.musl, loader.store,
                                ld_library_path=cfg.ld_library_path,
                                cwd=cfg.cwd).load(spelled, cfg.ld_preload)
        else:
            result = runs.load(spelled, runs.preloads(cfg.ld_preload))
        for message in result.warnings:  # printed and ignored, as ld.so does
            sys.stderr.write(message + "\n")
        for message in result.errors:
            sys.stderr.write(message + "\n")
            status = 1
        if result.fatal:
            sys.stderr.write(f"{spelled}: error while loading shared libraries: {result.fatal}\n")
            status = 1
            continue
        lines = result.ldd_lines()
        sys.stdout.write("".join(line + "\n" for line in lines))
    return status


def _ldd_loader(cfg: ScanConfig, loader: GlibcLoader, b: Binary) -> GlibcLoader | None:
    """The loader ldd would trace ``b`` with: the root's own, or on an x86-64 system the
    i386 one when the root has it (ldd's RTLDLIST); None when none would take it."""
    from unveil.config import glibc_platform_for
    from unveil.loader.glibc import GlibcLoader, load_cache

    p = cfg.glibc
    if (b.machine, b.bits, b.little_endian) == (p.machine, p.bits, p.little_endian):
        return loader
    if (p.machine, p.bits) != (62, 64) or (b.machine, b.bits) != (3, 32):
        return None
    i386 = glibc_platform_for(3, 32, True)
    if i386 is None or loader.fs.resolve(i386.interpreter) is None:
        return None
    cache, _problem = load_cache(loader.fs, loader.store, i386)
    return GlibcLoader(loader.fs, i386, loader.store, cache=cache,
                       ld_library_path=cfg.ld_library_path, cwd=cfg.cwd)


def _why_doc(ex: Explanation) -> dict[str, object]:
    r = ex.resolution
    return {
        "request": ex.request, "requester": ex.requester, "verdict": ex.verdict,
        "hints": list(ex.hints), "similar": list(ex.similar),
        "outcome": r.outcome.value if r else None, "path": r.path if r else None,
        "rule": r.rule.value if r and r.rule else None,
        "attempts": [_attempt(a) for a in r.attempts] if r else [],
    }


def _cmd_why(args: argparse.Namespace) -> int:
    from unveil.loader.explain import explain

    if not args.library.strip():
        _error("why needs a library name (e.g. libz.so.1)")
        return 2
    cfg = _config(args.root, ld_library_path=None, from_env=True)
    explanations: list[Explanation]
    if args.target is not None:
        explanations = Scanner(cfg).why(args.library, args.target, args.from_file)
        if not explanations:
            _error(f"nothing in {args.target} requests {args.library}"
                   + (f" from {args.from_file}" if args.from_file else ""))
            return 1
    else:
        loader = _loader(cfg)
        from_file = args.from_file
        if from_file is not None and "/" not in from_file:
            from_file = "./" + from_file
        if from_file is not None:
            target = from_file if from_file.startswith("/") else os.path.join(cfg.cwd, from_file)
            real = loader.fs.resolve(target)
            if real is None:
                _error(f"{args.from_file}: no such file")
                return 2
            if loader.fs.kind(real) is not Kind.FILE:
                _error(f"{args.from_file}: not a regular file")
                return 2
            stored = loader.store.get(real)
            if stored.binary is None:
                # unreadable, or not an ELF, Mach-O or PE file: nothing to explain from
                _error(f"{args.from_file}: {stored.error or 'not a binary'}")
                return 2
            if stored.binary is not None and (stored.binary.format is not BinaryFormat.ELF
                                              or flavor_of(stored.binary) == "musl"):
                # Not glibc: explain it through a scan of the file, with its own loader.
                explanations = Scanner(cfg).why(args.library, target)
                if not explanations:
                    _error(f"{args.from_file} does not request {args.library}")
                    return 1
            else:
                explanations = [explain(loader, args.library, from_file)]
        else:
            explanations = [explain(loader, args.library, None)]
    if args.format == "json":
        docs = [_why_doc(ex) for ex in explanations]
        sys.stdout.write(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2) + "\n")
    else:
        from rich.console import Console

        from unveil.cli.render import render_why

        # Piped or redirected, lines are never wrapped (grep sees whole paths), as for scan.
        console = Console(highlight=False, width=None if sys.stdout.isatty() else UNWRAPPED)
        for ex in explanations:
            render_why(console, ex)
    found = all(ex.resolution is not None and ex.resolution.outcome is Outcome.FOUND
                for ex in explanations)
    return 0 if found else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = _parse(parser, list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:
        return int(e.code or 0)
    for stream in (sys.stdout, sys.stderr):
        # File names are bytes on Linux: undecodable ones (surrogate escapes) are shown
        # escaped rather than crashing the output.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    handlers = {"scan": _cmd_scan, "ldd": _cmd_ldd, "why": _cmd_why, "trace": _cmd_trace,
                "sbom": _cmd_sbom}
    try:
        return handlers[args.command](args)
    except UnveilError as e:
        _error(str(e))
        return 2


def entry() -> None:
    sys.exit(main())
