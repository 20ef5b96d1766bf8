"""CycloneDX 1.6 JSON (1.7 with ``isExternal`` for host-provided libraries), built with
``cyclonedx-python-lib`` and validated offline with its strict validator in the tests.

One component per distribution (``pkg:pypi``), per binary file in the target (``library``
when identified, else ``file``), per library resolved outside it (``pkg:deb``... when its
package manager is known) and per library not found; ``dependencies`` edges go from each
binary to what it loads; ``compositions`` say what is incomplete (libraries not found or
not identified).  Evidence follows the spec: ``evidence.identity`` per field with the methods
used, ``evidence.occurrences`` with the path inside the package.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component as CdxComponent
from cyclonedx.model.component import ComponentType
from cyclonedx.model.component_evidence import (
    AnalysisTechnique,
    ComponentEvidence,
    Identity,
    IdentityField,
    Method,
    Occurrence,
)
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6, JsonV1Dot7
from packageurl import PackageURL

from unveil.identify.vendoring import vendoring_tool
from unveil.model import Component, Edge, EdgeClass, Outcome, ScannedBinary, ScanResult
from unveil.report.purls import distribution_purl

__all__ = ["to_cyclonedx", "vendoring_tool"]

_TECHNIQUE = {
    "sbom": AnalysisTechnique.ATTESTATION,
    "package-note": AnalysisTechnique.BINARY_ANALYSIS,
    "dpkg": AnalysisTechnique.MANIFEST_ANALYSIS,
    "apk": AnalysisTechnique.MANIFEST_ANALYSIS,
    "conda": AnalysisTechnique.MANIFEST_ANALYSIS,
    "record": AnalysisTechnique.MANIFEST_ANALYSIS,
    "banner": AnalysisTechnique.BINARY_ANALYSIS,
    "symbol-version": AnalysisTechnique.BINARY_ANALYSIS,
    "build-info": AnalysisTechnique.BINARY_ANALYSIS,
    "filename": AnalysisTechnique.FILENAME,
    "soname": AnalysisTechnique.FILENAME,
    "debian-index": AnalysisTechnique.OTHER,
    "rpm": AnalysisTechnique.MANIFEST_ANALYSIS,
    "version-symbol": AnalysisTechnique.BINARY_ANALYSIS,
    "go-buildinfo": AnalysisTechnique.BINARY_ANALYSIS,
    "cargo-auditable": AnalysisTechnique.BINARY_ANALYSIS,
    "rustc-comment": AnalysisTechnique.BINARY_ANALYSIS,
    "sibling": AnalysisTechnique.OTHER,
    "distribution": AnalysisTechnique.OTHER,
}


def _purl(text: str | None) -> PackageURL | None:
    if not text:
        return None
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def _evidence(c: Component | None, occurrences: list[str]) -> ComponentEvidence | None:
    identity = []
    if c is not None:
        for fname, fld in (("name", IdentityField.NAME), ("version", IdentityField.VERSION)):
            items = [e for e in c.evidence if e.field == fname]
            if not items:
                continue
            methods = [Method(technique=_TECHNIQUE.get(e.method, AnalysisTechnique.OTHER),
                              confidence=Decimal(str(round(e.confidence, 2))),
                              value=e.detail[:512]) for e in items]
            best = max(e.confidence for e in items)
            identity.append(Identity(field=fld, confidence=Decimal(str(round(best, 2))),
                                     concluded_value=c.name if fname == "name" else c.version,
                                     methods=methods))
    occ = [Occurrence(location=o) for o in occurrences]
    if not identity and not occ:
        return None
    return ComponentEvidence(identity=identity or None, occurrences=occ or None)


def _binary_component(b: ScannedBinary, ref: str) -> CdxComponent:
    ident = b.components[0] if b.components and not b.components[0].unidentified else None
    member = b.location.path
    props = [Property(name="unveil:role", value=b.role.value)]
    if b.binary.soname:
        props.append(Property(name="unveil:soname", value=b.binary.soname))
    if b.binary.build_id:
        props.append(Property(name="unveil:build-id", value=b.binary.build_id))
    tool = vendoring_tool(member)
    if tool:
        props.append(Property(name="unveil:vendoring-tool", value=tool))
    # What is compiled in (a statically linked library found by its banner, Go modules,
    # Rust crates) is a component of the binary: nested, as CycloneDX models assemblies.
    embedded = [CdxComponent(
        name=x.name, version=x.version, bom_ref=f"{ref}#{i}:{x.name}",
        type=ComponentType.LIBRARY, purl=_purl(x.purl), cpe=x.cpes[0] if x.cpes else None,
        properties=[Property(name="unveil:link", value="static")],
        evidence=_evidence(x, [member])) for i, x in enumerate(b.components[1:], 1)]
    hashes = [HashType(alg=HashAlgorithm.SHA_256, content=b.sha256)] if b.sha256 else None
    name = ident.name if ident else member.rsplit("/", 1)[-1]
    return CdxComponent(
        name=name, version=ident.version if ident else None, bom_ref=ref,
        type=ComponentType.LIBRARY if ident else ComponentType.FILE,
        purl=_purl(ident.purl) if ident else None,
        cpe=ident.cpes[0] if ident and ident.cpes else None,
        hashes=hashes, properties=props, evidence=_evidence(ident, [member]),
        components=embedded or None)


def _external_component(e: Edge, ref: str, external: bool) -> CdxComponent:
    c = e.component
    r = e.resolution
    props = [Property(name="unveil:class", value=e.edge_class.value),
             Property(name="unveil:request", value=r.request),
             Property(name="unveil:link", value=e.link.value)]
    if r.path:
        props.append(Property(name="unveil:path", value=r.path))
    if e.note:
        props.append(Property(name="unveil:note", value=e.note))
    name = c.name if c else r.request.rsplit("/", 1)[-1]
    return CdxComponent(
        name=name, version=c.version if c else None, bom_ref=ref,
        type=ComponentType.LIBRARY, purl=_purl(c.purl) if c else None,
        cpe=c.cpes[0] if c and c.cpes else None,
        is_external=True if external else None, properties=props,
        evidence=_evidence(c, []))


def to_cyclonedx(result: ScanResult, version: str, *, spec: str = "1.6",
                 timestamp: datetime | None = None) -> str:
    """The scan as a CycloneDX JSON document (``spec`` "1.6" or "1.7").  With ``timestamp``
    (a build's ``SOURCE_DATE_EPOCH``) the document is reproducible: that time, and a serial
    number derived from the content instead of a random one."""
    bom = Bom()
    # (the tools as components: the list of Tool objects is the form deprecated since 1.5)
    tools = ToolRepository(components=[CdxComponent(
        type=ComponentType.APPLICATION, name="unveil", version=version,
        group="unveil", bom_ref="tool:unveil")])
    bom.metadata = BomMetaData(tools=tools, timestamp=timestamp)
    incomplete: list[str] = []
    by_ref: dict[str, CdxComponent] = {}

    def add(c: CdxComponent) -> CdxComponent:
        key = str(c.bom_ref)
        if key not in by_ref:
            by_ref[key] = c
            bom.components.add(c)
        return by_ref[key]

    for t in result.targets:
        dists = {}
        for d in t.distributions:
            purl = distribution_purl(d)
            dists[d.name] = add(CdxComponent(name=d.name, version=d.version,
                                             bom_ref=f"dist:{d.name}@{d.version}",
                                             type=ComponentType.LIBRARY, purl=purl))
        refs = {b.loader_path: f"bin:{b.location.path}" for b in t.binaries}
        for b in t.binaries:
            comp = add(_binary_component(b, refs[b.loader_path]))
            if not b.components:
                incomplete.append(str(comp.bom_ref))
            if b.distribution in dists:
                bom.register_dependency(dists[b.distribution], [comp])
            deps = []
            for e in b.edges:
                r = e.resolution
                if r.outcome is Outcome.FOUND and e.edge_class in (
                        EdgeClass.BUNDLED, EdgeClass.OTHER_DISTRIBUTION) and e.location:
                    target_ref = next((refs[x.loader_path] for x in t.binaries
                                       if x.location == e.location), None)
                    if target_ref is not None:
                        deps.append(by_ref[target_ref] if target_ref in by_ref else add(
                            _binary_component(next(x for x in t.binaries
                                                   if refs[x.loader_path] == target_ref),
                                              target_ref)))
                        continue
                key = (r.path or r.request) if r.outcome is Outcome.FOUND else r.request
                ref = (f"sys:{key}" if r.outcome is Outcome.FOUND
                       else f"missing:{e.edge_class.value}:{r.request}")
                ext = add(_external_component(e, ref, external=spec == "1.7"))
                if r.outcome is not Outcome.FOUND:
                    incomplete.append(ref)
                deps.append(ext)
            if deps:
                bom.register_dependency(comp, deps)
    if timestamp is not None:
        # the same scan at the same time: the same serial number
        content = "\n".join(sorted(f"{c.bom_ref}@{c.version}" for c in by_ref.values()))
        bom.serial_number = uuid.uuid5(uuid.NAMESPACE_URL,
                                       f"unveil:{timestamp.isoformat()}:{content}")
    out = JsonV1Dot7(bom) if spec == "1.7" else JsonV1Dot6(bom)
    doc: dict[str, Any] = json.loads(out.output_as_string())
    # cyclonedx-python-lib does not model compositions; they are plain JSON in the spec.
    complete = sorted(set(by_ref) - set(incomplete))
    comps = []
    if complete:
        comps.append({"aggregate": "complete", "assemblies": complete})
    if incomplete:
        comps.append({"aggregate": "incomplete", "assemblies": sorted(set(incomplete))})
    if comps:
        doc["compositions"] = comps
    return json.dumps(doc, indent=2) + "\n"
