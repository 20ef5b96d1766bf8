"""The Windows loader as it serves a CPython (>= 3.8) extension module.

CPython loads an extension with ``LoadLibraryExW(path, NULL,
LOAD_LIBRARY_SEARCH_DEFAULT_DIRS | LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR)``; the module's
dependencies are then found in this order (Microsoft's "Dynamic-link library search
order", safe search with those flags):

1. API-set contracts (``api-ms-win-*``, ``ext-ms-*``) are virtual: the OS maps them;
2. a DLL of that name already loaded (names compare case-insensitively);
3. KnownDLLs (always from System32);
4. the directory of the module being loaded (LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR);
5. the application directory: the Python installation (python3.dll, python3XX.dll,
   vcruntime140.dll, vcruntime140_1.dll live there);
6. directories added with ``os.add_dll_directory`` — e.g. by delvewheel's patch of the
   package's ``__init__.py``, which the scan reads (never runs) to know where it points;
7. System32.  ``PATH`` is not searched.

Windows itself is not here, so System32's content is a documented list
(``unveil/data/windows-system-dlls.txt``), and the Python installation's is the list below.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from unveil._data import read_text
from unveil.loader.glibc import LoadedObject, LoadResult
from unveil.loader.store import BinaryStore
from unveil.model import Attempt, Binary, Outcome, Resolution, Rule, Verdict
from unveil.sources.fs import FileSystem, SymlinkLoop

__all__ = ["WindowsLoader", "WindowsPlatform", "runtime_label", "system_dlls"]

#: DLLs a CPython installation ships in its application directory.
PYTHON_DIR_DLLS = ("python3.dll", "vcruntime140.dll", "vcruntime140_1.dll")
#: Parts of the VC++ runtime CPython does *not* ship: present only with the redistributable.
VC_REDIST_DLLS = ("msvcp140.dll", "msvcp140_1.dll", "msvcp140_2.dll", "msvcp140_atomic_wait.dll",
                  "msvcp140_codecvt_ids.dll", "concrt140.dll", "vcomp140.dll", "vccorlib140.dll",
                  "mfc140.dll", "mfc140u.dll", "mfcm140.dll", "mfcm140u.dll", "vcamp140.dll")
KNOWN_DLLS = ("advapi32.dll", "clbcatq.dll", "combase.dll", "comdlg32.dll", "coml2.dll",
              "difxapi.dll", "gdi32.dll", "gdiplus.dll", "imagehlp.dll", "imm32.dll",
              "kernel32.dll", "msctf.dll", "msvcrt.dll", "normaliz.dll", "nsi.dll", "ole32.dll",
              "oleaut32.dll", "psapi.dll", "rpcrt4.dll", "sechost.dll", "setupapi.dll",
              "shcore.dll", "shell32.dll", "shlwapi.dll", "user32.dll", "wldap32.dll",
              "wow64.dll", "ws2_32.dll", "ntdll.dll", "kernelbase.dll", "bcrypt.dll",
              "ucrtbase.dll")


def system_dlls() -> frozenset[str]:
    text = read_text("windows-system-dlls.txt")
    names = {line.strip().lower() for line in text.splitlines()
             if line.strip() and not line.startswith("#")}
    return frozenset(names | set(KNOWN_DLLS))


_PYTHON_DLL = re.compile(r"python3\d+\.dll")


def runtime_label(name: str, python_dll: str) -> str | None:
    """``python`` for what CPython's own directory holds (``python_dll`` is the version's
    DLL, or ``""`` when the version is not known, as in an installed environment: then any
    ``python3XY.dll``, the one of the interpreter that loads the extension), ``vc-redist``
    for the Visual C++ runtime parts CPython does not ship."""
    low = name.lower()
    if low in PYTHON_DIR_DLLS or low == python_dll or (
            not python_dll and _PYTHON_DLL.fullmatch(low)):
        return "python"
    if low in VC_REDIST_DLLS:
        return "vc-redist"
    return None


def is_api_set(name: str) -> bool:
    low = name.lower()
    return low.startswith(("api-ms-win-", "ext-ms-"))


@dataclass(frozen=True, slots=True)
class WindowsPlatform:
    machine: int = 0x8664
    python_dll: str = "python311.dll"


@dataclass(eq=False, slots=True)
class _Mod:
    name: str
    path: str
    real: str
    binary: Binary | None


class WindowsLoader:
    def __init__(self, fs: FileSystem, platform: WindowsPlatform, store: BinaryStore, *,
                 dll_directories: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
                 ) -> None:
        """``dll_directories`` may be a function: it is then called on the first search
        that reaches them (finding them reads and parses packages' ``__init__.py``, which a
        scan whose PE files need only system DLLs -- launchers in a Linux environment --
        never has to)."""
        self.fs = fs
        self.platform = platform
        self.store = store
        self._dll_directories = dll_directories
        self._system = system_dlls()

    @property
    def dll_directories(self) -> tuple[str, ...]:
        if callable(self._dll_directories):
            self._dll_directories = tuple(self._dll_directories())
        return self._dll_directories

    def _find_in(self, d: str, name: str) -> str | None:
        """Case-insensitive lookup of ``name`` in directory ``d`` (as NTFS does)."""
        try:
            real_dir = self.fs.resolve(d)
        except SymlinkLoop:
            return None
        if real_dir is None:
            return None
        low = name.lower()
        for entry in self.fs.listdir(real_dir):
            if entry.lower() == low:
                return f"{real_dir.rstrip('/')}/{entry}"
        return None

    def load(self, main_path: str) -> LoadResult:
        real = self.fs.resolve(main_path) or main_path
        main_bin = self.store.get(real).binary
        root_dir = posixpath.dirname(real)
        main = _Mod(main_path, main_path, real, main_bin)
        mods = [main]
        loaded: dict[str, _Mod] = {posixpath.basename(real).lower(): main}
        objects = [LoadedObject(main_path, main_path, real, "main")]
        resolutions: list[Resolution] = []
        python_dll = self.platform.python_dll.lower()
        i = 0
        while i < len(mods):
            mod = mods[i]
            i += 1
            b = mod.binary
            if b is None:
                continue
            delayed = {n for n, k in zip(b.needed, b.needed_kinds, strict=False)
                       if k == "delay"}
            for need in b.needed:
                low = need.lower()
                attempts: list[Attempt] = []
                if is_api_set(need):
                    resolutions.append(Resolution(mod.path, need, Outcome.FOUND, need,
                                                  Rule.API_SET, None,
                                                  (Attempt(need, Rule.API_SET, Verdict.ACCEPTED,
                                                           None, None, "API-set contract"),)))
                    continue
                if low in loaded:
                    resolutions.append(Resolution(mod.path, need, Outcome.FOUND,
                                                  loaded[low].path, Rule.LOADED,
                                                  loaded[low].name))
                    continue
                if low in KNOWN_DLLS:
                    path = f"C:/Windows/System32/{low}"
                    resolutions.append(Resolution(mod.path, need, Outcome.FOUND, path,
                                                  Rule.KNOWN_DLLS, None, (Attempt(
                                                      path, Rule.KNOWN_DLLS, Verdict.ACCEPTED),)))
                    continue
                label = runtime_label(need, python_dll)
                if label == "python" and low != "python3.dll":
                    # python3XY.dll and vcruntime140*.dll are loaded with python.exe before
                    # any extension: a copy beside the module is never used.
                    path = f"<python>/{need}"
                    resolutions.append(Resolution(mod.path, need, Outcome.FOUND, path,
                                                  Rule.APP_DIR, None, (Attempt(
                                                      path, Rule.APP_DIR, Verdict.ACCEPTED,
                                                      None, None, "loaded with the Python "
                                                      "interpreter"),)))
                    loaded[low] = _Mod(need, path, path, None)
                    continue
                found: tuple[str, Rule] | None = None
                # A delay-load import is loaded on first use by the delay helper's
                # LoadLibraryEx(name, NULL, 0): the standard order, which has neither the
                # module's directory nor the add_dll_directory ones.
                dirs = [] if need in delayed else [(root_dir, Rule.DLL_DIR)] + [
                    (d, Rule.DLL_DIRECTORY) for d in self.dll_directories]
                for d, rule in dirs:
                    hit = self._find_in(d, need)
                    cand = hit or f"{d.rstrip('/')}/{need}"
                    if hit is not None:
                        attempts.append(Attempt(cand, rule, Verdict.ACCEPTED, d))
                        found = (hit, rule)
                        break
                    attempts.append(Attempt(cand, rule, Verdict.ABSENT, d))
                    if rule is Rule.DLL_DIR and runtime_label(need, python_dll) == "python":
                        # The application directory comes right after the module's own.
                        break
                if found is None and label == "python":
                    path = f"<python>/{need}"
                    attempts.append(Attempt(path, Rule.APP_DIR, Verdict.ACCEPTED, None, None,
                                            "shipped with CPython"))
                    resolutions.append(Resolution(mod.path, need, Outcome.FOUND, path,
                                                  Rule.APP_DIR, None, tuple(attempts)))
                    loaded[low] = _Mod(need, path, path, None)
                    continue
                if found is None and low in self._system:
                    path = f"C:/Windows/System32/{low}"
                    attempts.append(Attempt(path, Rule.SYSTEM32, Verdict.ACCEPTED))
                    resolutions.append(Resolution(mod.path, need, Outcome.FOUND, path,
                                                  Rule.SYSTEM32, None, tuple(attempts)))
                    loaded[low] = _Mod(need, path, path, None)
                    continue
                if found is None:
                    attempts.append(Attempt(f"C:/Windows/System32/{need}", Rule.SYSTEM32,
                                            Verdict.ABSENT, None, None,
                                            "not a DLL Windows provides" + (
                                                " (part of the VC++ redistributable)"
                                                if label == "vc-redist" else "")))
                    resolutions.append(Resolution(mod.path, need, Outcome.NOT_FOUND,
                                                  attempts=tuple(attempts)))
                    objects.append(LoadedObject(need, None, None, "missing"))
                    continue
                path, rule = found
                resolutions.append(Resolution(mod.path, need, Outcome.FOUND, path, rule, None,
                                              tuple(attempts)))
                new = _Mod(need, path, path, self.store.get(path).binary)
                loaded[low] = new
                mods.append(new)
                objects.append(LoadedObject(need, path, path, "dependency"))
        return LoadResult(main_path, tuple(objects), tuple(resolutions), None, main_bin,
                          flavor="windows")
