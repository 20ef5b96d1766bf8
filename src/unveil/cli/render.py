"""Human output with rich: a tree per target, distribution and binary."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from unveil.loader.explain import Explanation, describe_rule
from unveil.model import (
    Component,
    Edge,
    EdgeClass,
    Outcome,
    ProblemKind,
    Rule,
    ScannedBinary,
    ScanResult,
    TargetResult,
    Verdict,
)
from unveil.report.json import summary

__all__ = ["render_scan", "render_why"]

_STYLE = {
    EdgeClass.BUNDLED: "green",
    EdgeClass.OTHER_DISTRIBUTION: "cyan",
    EdgeClass.SYSTEM: "yellow",
    EdgeClass.POLICY_SYSTEM: "dim",
    EdgeClass.MISSING: "bold red",
    EdgeClass.OPTIONAL: "yellow",
    EdgeClass.RUNTIME: "magenta",
}
#: every class, the most urgent first (a class left out here would vanish from the text)
_ORDER = [EdgeClass.MISSING, EdgeClass.OPTIONAL, EdgeClass.RUNTIME,
          EdgeClass.OTHER_DISTRIBUTION, EdgeClass.SYSTEM, EdgeClass.BUNDLED,
          EdgeClass.POLICY_SYSTEM]


def _shortener(t: TargetResult, verbose: bool) -> Callable[[str], str]:
    """Paths as the tree shows them: relative to the directory of the distribution that
    holds them (a venv's site-packages, a node_modules package), else to the target
    directory; whole with ``-v`` (the JSON always has them whole)."""
    if verbose:
        return lambda path: path
    dirs = {t.target.rstrip("/")} if t.target.startswith("/") else set()
    for d in t.distributions:
        if d.metadata_path.startswith("/"):
            dirs.add(posixpath.dirname(d.metadata_path.rstrip("/")))
    prefixes = sorted((d + "/" for d in dirs if d), key=len, reverse=True)

    def short(path: str) -> str:
        for p in prefixes:
            if path.startswith(p):
                return path[len(p):]
        return path
    return short


def _where(e: Edge, container: str | None) -> str:
    loc = e.location
    if loc is None:
        return e.resolution.path or ""
    if loc.container is not None and loc.container == container:
        return loc.path
    return str(loc)


def _edge_text(e: Edge, verbose: bool, container: str | None,
               short: Callable[[str], str] = lambda path: path) -> str:
    r = e.resolution
    name = escape(short(r.request))
    if r.outcome is Outcome.FATAL:
        return f"{name}: [bold red]ld.so would abort[/]: {escape(r.fatal or '')}"
    if r.outcome is not Outcome.FOUND:
        extra = f" (expected from {escape(e.provider)})" if e.provider else ""
        hint = e.component
        if e.note and e.edge_class is EdgeClass.OPTIONAL:
            # why its absence does not matter (a prebuild for another platform), not how to
            # install it
            extra += f" [dim]({escape(e.note)})[/]"
        elif hint is not None and any(x.method == "debian-index" for x in hint.evidence):
            extra += (f" [dim](in Debian package {escape(hint.name)}: "
                      f"apt-get install {escape(hint.name)})[/]")
        elif e.note and e.edge_class is EdgeClass.MISSING:
            extra += f" [dim]({escape(e.note)})[/]"
        return f"{name} [bold red]not found[/]{extra}"
    found = _where(e, container)
    if found == r.request:  # a path loaded as itself: say how it was asked for instead
        where = f"[dim]({escape(e.note or 'provided by the system')})[/]"
    else:
        where = escape(short(found))
    if e.provider and e.edge_class is EdgeClass.OTHER_DISTRIBUTION:
        where = f"{where} [cyan]({escape(e.provider)})[/]"
    who = e.component or (_IDENTITY.get(str(e.location)) if e.location else None)
    if who is not None:
        where += f" [magenta]{escape(who.name)} {escape(who.version or '(version unknown)')}[/]"
    if e.note and e.edge_class is EdgeClass.RUNTIME:
        where += f" [dim]({escape(e.note)})[/]"
    if verbose:
        origin = _MEMBER.get(posixpath.normpath(r.origin), r.origin) if r.origin else None
        if r.rule is Rule.LOADED:
            return f"{name} → {where}  [dim]already loaded ({escape(origin or '')})[/]"
        return f"{name} → {where}  [dim]via {escape(describe_rule(r.rule, origin))}[/]"
    return f"{name} → {where}"


#: Embedded components named per binary in the tree without ``-v``.
EMBEDDED_SHOWN = 8


def _binary_node(parent: Tree, b: ScannedBinary, verbose: bool,
                 short: Callable[[str], str]) -> None:
    label = escape(short(b.location.path))
    ident = ""
    if b.components:
        c = b.components[0]
        ident = f" [magenta]{escape(c.name)} {escape(c.version or '(version unknown)')}[/]"
        if c.unidentified:
            ident = " [dim](no known project names it)[/]"
        elif c.evidence and all(e.method == "distribution" for e in c.evidence):
            ident += " [dim](guess: the distribution's own code)[/]"
        elif c.version and all(e.method in ("sibling", "filename") for e in c.evidence
                               if e.field == "version") and any(
                e.method == "sibling" for e in c.evidence):
            # inferred, not read in the file: say from where
            source = next(e.detail for e in c.evidence if e.method == "sibling")
            ident += f" [dim](version from {escape(source.split(' beside it')[0])} beside it)[/]"
        embedded = b.components[1:]
        if embedded:
            # A Go or Rust executable embeds hundreds of modules: name a few unless -v.
            shown = embedded if verbose else embedded[:EMBEDDED_SHOWN]
            text = ", ".join(f"{x.name} {x.version or ''}".strip() for x in shown)
            if len(shown) < len(embedded):
                text += f" and {len(embedded) - len(shown)} more (-v or --format json)"
            ident += " [dim]+ embedded: " + escape(text) + "[/]"
    node = parent.add(f"[bold]{label}[/] [dim]{b.role.value}[/]{ident}")
    groups: dict[EdgeClass, list[Edge]] = defaultdict(list)
    for e in b.edges:
        groups[e.edge_class].append(e)
    for cls in _ORDER:
        edges = groups.get(cls)
        if not edges:
            continue
        style = _STYLE[cls]
        if cls is EdgeClass.POLICY_SYSTEM and not verbose:
            names = ", ".join(escape(e.resolution.request) for e in edges)
            node.add(f"[{style}]{cls.value} ({len(edges)}): {names}[/]")
            continue
        g = node.add(f"[{style}]{cls.value} ({len(edges)})[/]")
        for e in edges:
            g.add(_edge_text(e, verbose, b.location.container, short))
    if not b.edges and not b.binary.needed:
        node.add("[dim]no dynamic dependencies[/]")


#: identity of each scanned binary by location, for edges that point at it (set per render).
_IDENTITY: dict[str, Component] = {}
#: a binary's path as its loader spelled it -> as the tree names it (a wheel's member path,
#: not the mount point it is resolved under), for the RPATH owners ``-v`` names
_MEMBER: dict[str, str] = {}


def render_scan(console: Console, result: ScanResult, verbose: bool = False) -> None:
    _MEMBER.clear()
    _MEMBER.update({posixpath.normpath(b.loader_path): b.location.path for t in result.targets
                    for b in t.binaries if b.loader_path != b.location.path})
    _IDENTITY.clear()
    _IDENTITY.update({str(b.location): b.components[0] for t in result.targets
                      for b in t.binaries if b.components and not b.components[0].unidentified})
    for t in result.targets:
        short = _shortener(t, verbose)
        kind = (f"{t.ecosystem} {t.kind.value}" if t.ecosystem and t.kind.value in (
            "package", "directory") else t.kind.value)
        root = Tree(f"[bold]{escape(t.target)}[/] [dim]({kind})[/]")
        by_dist: dict[str | None, list[ScannedBinary]] = defaultdict(list)
        for b in t.binaries:
            by_dist[b.distribution].append(b)
        versions = {d.name: d.version for d in t.distributions}
        for dist in sorted(by_dist, key=lambda d: (d is None, d or "")):
            if dist is None:
                dnode = root.add("[bold](no distribution)[/]")
            else:
                v = versions.get(dist)
                dnode = root.add(f"[bold magenta]{escape(dist)}[/] {escape(v or '')}")
            for b in by_dist[dist]:
                _binary_node(dnode, b, verbose, short)
        if t.dynamic_loads:
            n = len(t.dynamic_loads)
            dnode = root.add(f"[bold]dynamic loading ({n} call site{'s' if n != 1 else ''})[/]")
            for d in t.dynamic_loads:
                site = d.site
                where = short(site.file) + (f":{site.line}" if site.line else "")
                names = ", ".join(("find_library(" + n + ")") if site.stem else short(n)
                                  for n in site.names) or "(computed at run time)"
                label = f"{escape(where)} [dim]{escape(site.api)}[/] {escape(names)}"
                if site.api.endswith("add_dll_directory"):
                    label += " [dim](a Windows DLL search directory: loads nothing)[/]"
                elif not d.edges:
                    label += f" [dim]({site.confidence.value} confidence; not resolved)[/]"
                snode = dnode.add(label)
                for e in d.edges:
                    style = _STYLE[e.edge_class]
                    snode.add(f"[{style}]{e.edge_class.value}[/]: "
                              + _edge_text(e, verbose, None, short))
        phantoms = [d for d in t.declarations if d.category == "phantom"]
        if phantoms:
            seen: set[tuple[str, str]] = set()
            # distinct libraries here; the JSON summary's declared-phantom counts edges
            libraries = len({d.request for d in phantoms})
            edges = (f" ({len(phantoms)} edges)" if len(phantoms) != libraries else "")
            pn = root.add(f"[bold red]phantom dependencies (needed from outside, declared "
                          f"nowhere): {libraries} librar{'ies' if libraries != 1 else 'y'}"
                          f"{edges}[/]")
            for ph in phantoms:
                if (ph.request, ph.depurl or "") in seen:
                    continue
                seen.add((ph.request, ph.depurl or ""))
                pn.add(f"{escape(ph.request)} [dim]{escape(ph.depurl or '')} — "
                       f"{escape(ph.reason)}[/]")
        faults = [p for p in t.problems if p.kind is not ProblemKind.NOTE]
        notes = [p for p in t.problems if p.kind is ProblemKind.NOTE]
        for title, group in (("[bold red]problems", faults), ("[cyan]notes", notes)):
            if group:
                pnode = root.add(f"{title} ({len(group)})[/]")
                for p in group:
                    pnode.add(f"{escape(short(p.location))}: {escape(p.message)}")
        console.print(root)
    s = summary(result)
    parts = [f"{s.get('binaries', 0)} binaries"] + [
        f"{s[c.value]} {c.value}" for c in _ORDER if s.get(c.value)]
    dl = sum(v for k, v in s.items() if k.startswith("dlopen-"))
    if dl:
        parts.append(f"{dl} dlopen edges ({s.get('dlopen-missing', 0)} missing)")
    if s.get("problems"):
        parts.append(f"{s['problems']} problem{'s' if s['problems'] != 1 else ''}")
    if s.get("notes"):
        parts.append(f"{s['notes']} note{'s' if s['notes'] != 1 else ''}")
    console.print(", ".join(parts))


def render_why(console: Console, ex: Explanation) -> None:
    head = f"[bold]{escape(ex.request)}[/]"
    if ex.requester:
        head += f" for {escape(ex.requester)}"
    console.print(head)
    r = ex.first if ex.resolution and ex.resolution.attempts == () and ex.first else ex.resolution
    if r is not None and r.attempts:
        console.print(f"  search, as requested by {escape(r.requester)}:")
        for a in r.attempts:
            style = "green" if a.verdict is Verdict.ACCEPTED else (
                "dim" if a.verdict is Verdict.ABSENT else "yellow")
            why = describe_rule(a.rule, a.origin)
            extra = f" [{escape(a.hwcaps)}]" if a.hwcaps else ""
            detail = f" — {escape(a.detail)}" if a.detail else ""
            console.print(f"    [{style}]{a.verdict.value:>13}[/]  {escape(a.path)}"
                          f"  [dim]({escape(why)}{extra})[/]{detail}")
    console.print(f"  [bold]verdict:[/] {escape(ex.verdict)}")
    for h in ex.hints:
        console.print(f"  [bold]hint:[/] {escape(h)}")
