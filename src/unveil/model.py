"""The result model: frozen, slotted dataclasses of tuples, enums and strings.

Three kinds of value are kept apart:

* facts read from a file (:class:`Binary`, :class:`Symbol`),
* loader edges (:class:`Resolution` with every :class:`Attempt` the loader made), and
* scan-level judgements about an edge (:class:`Edge`: bundled, system, missing...).

Nothing here does I/O.  "Not found" is a value (:attr:`Outcome.NOT_FOUND`), never an exception.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "Attempt",
    "Binary",
    "BinaryFormat",
    "Component",
    "Confidence",
    "DlopenNote",
    "Declaration",
    "Distribution",
    "DynamicLoad",
    "Edge",
    "EdgeClass",
    "Evidence",
    "LinkKind",
    "LoadSite",
    "Location",
    "Outcome",
    "Problem",
    "ProblemKind",
    "Resolution",
    "Role",
    "Rule",
    "ScanResult",
    "ScannedBinary",
    "Symbol",
    "TargetKind",
    "TargetResult",
    "Verdict",
    "VersionNeed",
]


class BinaryFormat(enum.Enum):
    ELF = "elf"
    MACHO = "macho"
    PE = "pe"


@dataclass(frozen=True, slots=True)
class VersionNeed:
    """A DT_VERNEED entry: the symbol versions this object needs from one library."""

    file: str
    versions: tuple[str, ...]
    #: those of ``versions`` marked VER_FLG_WEAK: the loader goes on without them
    weak: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Filtee:
    """A ``DT_FILTER`` or ``DT_AUXILIARY`` entry: a library ld.so loads with the filter
    object, just before it in the search order, so that its definitions win.  A filter's
    filtee must load (ld.so stops without it); an auxiliary one may be absent.  ``after``
    counts the DT_NEEDED entries before it in the dynamic array: ld.so takes the entries
    in that order."""

    name: str
    auxiliary: bool
    after: int


@dataclass(frozen=True, slots=True)
class DlopenNote:
    """One entry of a ``.note.dlopen`` note (UAPI "dlopen metadata" spec)."""

    sonames: tuple[str, ...]
    feature: str | None = None
    description: str | None = None
    priority: str | None = None


@dataclass(frozen=True, slots=True)
class Binary:
    """Facts read from one binary file; what it *is*, not what it resolves to.

    ``rpath``/``runpath`` are ``None`` when the tag is absent and a tuple of the
    colon-separated entries (tokens unexpanded) when present: an empty RUNPATH still
    disables RPATH, so absence and emptiness differ.
    """

    format: BinaryFormat
    size: int
    bits: int
    little_endian: bool
    machine: int
    osabi: int
    abiversion: int
    file_type: int
    interpreter: str | None = None
    soname: str | None = None
    needed: tuple[str, ...] = ()
    #: DT_FILTER and DT_AUXILIARY entries, in dynamic-array order
    filtees: tuple[Filtee, ...] = ()
    rpath: tuple[str, ...] | None = None
    runpath: tuple[str, ...] | None = None
    flags: int = 0
    flags_1: int = 0
    build_id: str | None = None
    package_note: tuple[tuple[str, str], ...] | None = None
    dlopen_notes: tuple[DlopenNote, ...] = ()
    version_needs: tuple[VersionNeed, ...] = ()
    version_defs: tuple[str, ...] = ()
    #: the name of the base version definition (the file's own name), None without DT_VERDEF
    version_base: str | None = None
    has_dynamic: bool = False
    ident_padding_ok: bool = True
    ident_version: int = 1
    phentsize_ok: bool = True
    #: the dynamic string table names ``dlopen`` (the file can load libraries at run time).
    imports_dlopen: bool = False
    # Mach-O and PE (the ELF reader leaves these empty):
    #: architecture name of this file or slice ("x86_64", "arm64", "i386", "amd64"...).
    arch: str | None = None
    #: for each entry of ``needed``, how it is loaded: "load", "weak", "reexport", "lazy",
    #: "upward" (Mach-O load commands) or "import", "delay" (PE); empty for ELF.
    needed_kinds: tuple[str, ...] = ()
    #: minimum OS version (Mach-O LC_BUILD_VERSION / LC_VERSION_MIN_*, PE subsystem version).
    min_os: str | None = None
    #: the slices of a fat/universal Mach-O file, each a Binary of its own.
    slices: tuple[Binary, ...] = ()

    @property
    def nodeflib(self) -> bool:
        """DF_1_NODEFLIB: the default directories and the cache are not searched."""
        return bool(self.flags_1 & 0x800)

    def only_auxiliary(self, name: str) -> bool:
        """Whether ``name`` is asked for only as a DT_AUXILIARY filtee (not also as
        DT_NEEDED or DT_FILTER): ld.so goes on without it."""
        named = [f for f in self.filtees if f.name == name]
        return bool(named) and all(f.auxiliary for f in named) and name not in self.needed


@dataclass(frozen=True, slots=True)
class Symbol:
    """A dynamic symbol, with its version when the object is versioned."""

    name: str
    defined: bool
    binding: str
    type: str
    version: str | None = None
    version_hidden: bool = False
    #: the library an imported symbol is bound to (Mach-O two-level namespace ordinal,
    #: PE import DLL); ``None`` for ELF, which binds by search order.
    library: str | None = None


class Rule(enum.Enum):
    """The step of the loader's search plan that produced a candidate path."""

    PATH = "path"
    LOADED = "already-loaded"
    RPATH = "rpath"
    LD_LIBRARY_PATH = "ld-library-path"
    RUNPATH = "runpath"
    CACHE = "ld.so.cache"
    DEFAULT = "default-dir"
    # dyld
    LOADER_PATH = "@loader_path"
    EXECUTABLE_PATH = "@executable_path"
    DYLD_LIBRARY_PATH = "dyld-library-path"
    DYLD_FALLBACK = "dyld-fallback-path"
    SHARED_CACHE = "dyld-shared-cache"
    # Windows
    DLL_DIR = "dll-load-dir"
    APP_DIR = "application-dir"
    DLL_DIRECTORY = "add-dll-directory"
    KNOWN_DLLS = "known-dlls"
    SYSTEM32 = "system32"
    API_SET = "api-set"


class Verdict(enum.Enum):
    """What the loader made of one candidate path."""

    ACCEPTED = "accepted"
    ABSENT = "absent"
    WRONG_CLASS = "wrong-class"
    WRONG_MACHINE = "wrong-machine"
    INVALID = "invalid"
    UNREADABLE = "unreadable"
    LOOP = "symlink-loop"
    #: excluded by the loader's rules without being opened (a cache entry in a system
    #: directory when the requester has DF_1_NODEFLIB)
    REJECTED = "rejected"


class Outcome(enum.Enum):
    FOUND = "found"
    NOT_FOUND = "not-found"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One candidate the loader tried.

    ``origin`` names whose search list produced it: the object (as opened) whose RPATH or
    RUNPATH was used, or ``None`` for environment, cache and default directories.
    ``hwcaps`` is the hwcaps subdirectory the candidate lies in, if any.
    """

    path: str
    rule: Rule
    verdict: Verdict
    origin: str | None = None
    hwcaps: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    """One loader edge: ``requester`` asked for ``request`` and this is what happened.

    ``path`` is spelled exactly as the loader would open it (not normalised: ``..`` kept),
    which is what ``ldd`` prints.  ``fatal`` holds the loader's error message when it would
    abort the whole load (e.g. a file with an invalid ELF header in a search directory).
    """

    requester: str
    request: str
    outcome: Outcome
    path: str | None = None
    rule: Rule | None = None
    origin: str | None = None
    attempts: tuple[Attempt, ...] = ()
    fatal: str | None = None


class EdgeClass(enum.Enum):
    """Where a dependency comes from, judged against the package being scanned."""

    BUNDLED = "bundled"
    OTHER_DISTRIBUTION = "other-distribution"
    SYSTEM = "system"
    POLICY_SYSTEM = "policy-system"
    #: provided by the language runtime that loads the package (the Python DLL, the VC++
    #: runtime CPython ships); ``Edge.provider`` says which.
    RUNTIME = "runtime"
    MISSING = "missing"
    #: not found, but the loader goes on without it: a weak Mach-O import
    #: (LC_LOAD_WEAK_DYLIB) or a PE delay-load import, loaded (or not) when first used.
    OPTIONAL = "optional"


class LinkKind(enum.Enum):
    DYNAMIC = "dynamic"
    STATIC = "static"
    DLOPEN = "dlopen"


class Confidence(enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class LoadSite:
    """A place that loads a library at run time, found without running it.

    ``names`` are the library names it would try, in order (``find_library`` stems are
    given as written, e.g. ``"magic"``, with ``stem=True``); ``api`` is the call
    (``"ctypes.CDLL"``, ``"cffi.dlopen"``, ``"koffi.load"``, ``".note.dlopen"``...);
    ``line`` is 1-based.  ``hints`` carry what could not be decided statically, such as
    an environment variable that overrides the name.  ``guarded`` says what in the code
    handles a failure of the load (``"try/except OSError"``, ``"try/catch"``, ``"rescue
    LoadError"``): the program
    goes on without the library, so a library that is not found is optional, not missing.
    """

    file: str
    line: int | None
    language: str
    api: str
    names: tuple[str, ...]
    confidence: Confidence
    stem: bool = False
    hints: tuple[str, ...] = ()
    guarded: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why we believe a component is what we say: ``method`` is how (``"sbom"``,
    ``"package-note"``, ``"dpkg"``, ``"banner"``, ``"symbol-version"``, ``"filename"``...),
    ``detail`` what was seen, ``confidence`` in [0, 1]."""

    method: str
    detail: str
    confidence: float
    field: str = "name"


@dataclass(frozen=True, slots=True)
class Component:
    """A claim about the upstream identity of a binary or library.

    ``ScannedBinary.components[0]`` is the file itself.  When nothing names the file (no
    rule, SBOM, package database or build record) but its bytes hold other projects (a
    statically linked zlib, an LLVM), the first component is a stand-in named after the file
    with the single evidence method ``"unidentified"`` (:attr:`unidentified`), so that
    what is embedded is never taken for what the file is."""

    name: str
    version: str | None
    purl: str | None = None
    cpes: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    homepage: str | None = None
    source: str | None = None
    conflicts: tuple[str, ...] = ()

    @property
    def unidentified(self) -> bool:
        """Whether this is the stand-in for a file no known project names."""
        return any(e.method == "unidentified" for e in self.evidence)


class Role(enum.Enum):
    """Why a binary is in the package: how it is first loaded."""

    EXECUTABLE = "executable"
    EXTENSION = "extension-module"
    LIBRARY = "library"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a file is: ``container`` is the archive (wheel) holding it, or ``None`` when
    ``path`` is a path on disk."""

    path: str
    container: str | None = None

    def __str__(self) -> str:
        return f"{self.container}!{self.path}" if self.container else self.path


@dataclass(frozen=True, slots=True)
class Edge:
    """A resolution judged against the scanned package."""

    resolution: Resolution
    edge_class: EdgeClass
    location: Location | None = None
    provider: str | None = None
    policy_allowed: bool = False
    link: LinkKind = LinkKind.DYNAMIC
    note: str | None = None
    #: who the resolved file is (or, for a missing library, who would provide it).
    component: Component | None = None


@dataclass(frozen=True, slots=True)
class Distribution:
    name: str
    version: str | None
    metadata_path: str
    files: int = 0


@dataclass(frozen=True, slots=True)
class ScannedBinary:
    location: Location
    loader_path: str
    binary: Binary
    role: Role
    distribution: str | None = None
    edges: tuple[Edge, ...] = ()
    #: who this file is: upstream projects identified in it (one for a vendored library;
    #: several when libraries are statically embedded).
    components: tuple[Component, ...] = ()
    #: SHA-256 of the file's bytes, when the scan was asked for hashes.
    sha256: str | None = None


class ProblemKind(enum.Enum):
    FORMAT = "format"
    SOURCE = "source"
    LOADER = "loader"
    UNSUPPORTED = "unsupported"
    #: not a fault: a fact about the package that its files cannot act on (an npm platform
    #: package, the platform packages chosen at install time); never fatal under --strict
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Problem:
    """Anything skipped or failed, with where and why.  Fatal only under ``strict``."""

    location: str
    message: str
    kind: ProblemKind = ProblemKind.FORMAT
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class DynamicLoad:
    """A run-time load found statically (a :class:`LoadSite`), with one edge per library
    name the site would try, in order — the real loader stops at the first that loads."""

    site: LoadSite
    edges: tuple[Edge, ...]
    distribution: str | None = None

    @property
    def found(self) -> bool:
        return any(e.resolution.outcome is Outcome.FOUND for e in self.edges)


@dataclass(frozen=True, slots=True)
class Declaration:
    """One dependency judged against what its package declares (PEP 725 ``[external]``,
    ``Requires-External(-Dep)``, ``Requires-Dist``, shipped SBOMs): ``category`` is
    ``declared``, ``bundled-and-recorded``, ``bundled-unrecorded``, ``phantom`` (needed from
    outside, declared nowhere), ``internal`` (the project's own library) or ``platform``
    (libc, the loader, the OS and the language runtime)."""

    category: str
    requester: str
    request: str
    reason: str
    depurl: str | None = None
    distribution: str | None = None
    link: LinkKind = LinkKind.DYNAMIC


class TargetKind(enum.Enum):
    WHEEL = "wheel"
    ENVIRONMENT = "environment"
    DIRECTORY = "directory"
    FILE = "file"
    #: a package file of another ecosystem (.deb, npm .tgz, .gem, .conda, .jar), read in place
    PACKAGE = "package"


@dataclass(frozen=True, slots=True)
class TargetResult:
    target: str
    kind: TargetKind
    distributions: tuple[Distribution, ...] = ()
    binaries: tuple[ScannedBinary, ...] = ()
    problems: tuple[Problem, ...] = ()
    dynamic_loads: tuple[DynamicLoad, ...] = ()
    declarations: tuple[Declaration, ...] = ()
    #: the packaging ecosystem the target belongs to: "pypi" (wheels, Python environments),
    #: "npm", "gem", "deb", "conda", "jar"; None for a plain directory or file
    ecosystem: str | None = None


@dataclass(frozen=True, slots=True)
class ScanResult:
    targets: tuple[TargetResult, ...]
    platform: tuple[tuple[str, str], ...] = field(default=())

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(p for t in self.targets for p in t.problems)

    @property
    def edges(self) -> tuple[Edge, ...]:
        return tuple(e for t in self.targets for b in t.binaries for e in b.edges)
