"""Read the provision elements that name records by what they are: data and code."""

from collections.abc import Mapping
from typing import Any

from consent.icd10 import ICD10_SYSTEMS, Icd10Codes, icd10_span
from consent.model import RELATIVE_REFERENCE, Code, Label
from consent.provision import Codes, Unenforceable

MEANINGS = ("instance", "related", "dependents", "authoredby")


def read_data(
    items: list[Mapping[str, Any]], related: Mapping[str, frozenset[str]]
) -> tuple[frozenset[str], frozenset[str]]:
    """Read provision.data: the records covered by key, and those covered for referring to
    one of them (meaning `dependents`). `related` maps a record named with meaning `related`
    to the references it makes; raises Unenforceable under `data`."""
    keys: set[str] = set()
    referenced = set()
    for i, item in enumerate(items):
        meaning = item.get("meaning")
        if meaning == "authoredby":
            raise Unenforceable(
                f"[{i}].meaning",
                "authoredby cannot be enforced: the consent engine does not know who authored "
                "a record",
            )
        if meaning not in MEANINGS:
            raise Unenforceable(f"[{i}].meaning", f"expected one of {', '.join(MEANINGS)}")
        literal = _literal(item.get("reference"), f"[{i}].reference")
        keys.add(literal)
        if meaning == "related":
            found = related.get(literal)
            if found is None:
                raise Unenforceable(
                    f"[{i}].reference.reference",
                    f"{literal} is not a stored record: the records it refers to cannot be known",
                )
            keys |= found
        elif meaning == "dependents":
            referenced.add(literal)
    return frozenset(keys), frozenset(referenced)


def _literal(ref: object, where: str) -> str:
    """Read a data reference: only a literal relative one, Type/id, names a record."""
    if not isinstance(ref, Mapping):
        raise Unenforceable(where, "missing")
    literal = ref.get("reference")
    match = RELATIVE_REFERENCE.fullmatch(literal) if isinstance(literal, str) else None
    if match is None or match["key"] != literal:
        problem = f"{literal!r}: expected" if literal is not None else "missing:"
        raise Unenforceable(
            f"{where}.reference",
            f"{problem} a literal relative reference Type/id (an identifier, an absolute, "
            "contained or version-specific reference cannot be enforced)",
        )
    return str(literal)


def read_codes(concepts: list[Mapping[str, Any]]) -> Codes:
    """Read provision.code: exact codes, and ICD-10 codes, blocks and chapters; raises
    Unenforceable under `code`."""
    exact: set[Code] = set()
    prefixes: set[str] = set()
    ranges: set[tuple[str, str]] = set()
    for i, concept in enumerate(concepts):
        codings = concept.get("coding")
        if not isinstance(codings, list) or not codings:
            raise Unenforceable(
                f"[{i}].coding", "missing: a concept named by text alone cannot be matched"
            )
        for j, coding in enumerate(codings):
            where = f"[{i}].coding[{j}]"
            system, code = read_coding(coding, where)
            if system not in ICD10_SYSTEMS:
                exact.add((system, code))
                continue
            span = icd10_span(code)
            if span is None:
                raise Unenforceable(
                    f"{where}.code",
                    f"{code!r} is not an ICD-10 code (F32, F32.1), block (F30-F39) or chapter "
                    "(I to XXII)",
                )
            if isinstance(span, tuple):
                ranges.add(span)
            else:
                prefixes.add(span)
    return Codes(frozenset(exact), Icd10Codes(tuple(sorted(prefixes)), tuple(sorted(ranges))))


def read_labels(items: list[Mapping[str, Any]]) -> frozenset[Label]:
    """Read provision.securityLabel: Codings, each with a system and a code."""
    return frozenset(read_coding(coding, f"[{i}]") for i, coding in enumerate(items))


def read_coding(coding: object, where: str) -> Code:
    """Read a Coding's system and code, both required."""
    if not isinstance(coding, Mapping):
        raise Unenforceable(where, "expected an object")
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(system, str) or not system:
        raise Unenforceable(f"{where}.system", "missing")
    if not isinstance(code, str) or not code:
        raise Unenforceable(f"{where}.code", "missing")
    return system, code
