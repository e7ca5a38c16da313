"""Read Consent.provision.actor: who reads (recipients) and which facility holds (custodian).

An actor's role says how it takes part (R4: "how the individual is involved in the resources
content that is described"): v3-ParticipationType IRCP or PRCP (an information recipient) is
who reads; CST (custodian) is the facility holding the records. A role without a coding (text
only, or none) is read as a recipient, as the engine always has. Any other coded role (AUT,
the author; a role of another system) cannot be enforced: the engine knows who reads a record
and who holds it, nothing else about who took part in it.

Recipients by kind:
- Organization: a facility, by a literal reference the hub resolves or by a facility-code
  identifier; it covers every access made at that facility.
- Practitioner: a clinician, "Practitioner/<id>" or an identifier "system|value"; it covers
  their accesses at any facility.
- Patient, RelatedPerson, Device: they never read through the hub as a facility or a
  clinician, so they cover no access: a provision naming only such recipients governs
  nothing the hub decides, which is what it says.
- Group, CareTeam, PractitionerRole: they stand for clinicians and facilities the engine
  cannot list; reading them as no one would let a deny miss its members, so they are refused.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consent.model import PARTICIPATION_TYPE_SYSTEM, RELATIVE_REFERENCE
from consent.provision import Unenforceable

RECIPIENT_ROLES = frozenset({"IRCP", "PRCP"})
CUSTODIAN_ROLE = "CST"
_ROLES_UNDERSTOOD = (
    "cannot be enforced: the consent engine knows who reads a record "
    f"({PARTICIPATION_TYPE_SYSTEM} IRCP, PRCP) and which facility holds it (CST), not "
    "otherwise who took part in it"
)
NEVER_READING = frozenset({"Patient", "RelatedPerson", "Device"})
UNLISTED = frozenset({"Group", "CareTeam", "PractitionerRole"})


@dataclass(frozen=True)
class Actors:
    """The actors of one provision: readers (None: no condition on who reads) and
    custodians (None: no condition on who holds the record)."""

    facilities: frozenset[str] | None = None
    practitioners: frozenset[str] = frozenset()
    custodians: frozenset[str] | None = None


def read_actors(
    actors: list[Mapping[str, Any]], organizations: Mapping[str, str], facility_system: str
) -> Actors:
    """Read a provision's actors; raises Unenforceable under `actor`."""
    readers: set[str] | None = None
    practitioners: set[str] = set()
    custodians: set[str] | None = None
    for i, actor in enumerate(actors):
        here = f"[{i}]"
        custodian = _is_custodian(actor.get("role"), f"{here}.role")
        ref = actor.get("reference")
        if not isinstance(ref, Mapping):
            raise Unenforceable(f"{here}.reference", "missing")
        kind, name, literal = _named(ref, f"{here}.reference", facility_system)
        if custodian:
            if kind != "Organization":
                raise Unenforceable(
                    f"{here}.reference", f"a custodian (CST) is a facility, not a {kind}"
                )
            custodians = custodians if custodians is not None else set()
            custodians.add(_facility(name, literal, organizations, f"{here}.reference"))
            continue
        # Naming any recipient, even one who never reads here, makes who reads a condition.
        readers = readers if readers is not None else set()
        if kind == "Organization":
            readers.add(_facility(name, literal, organizations, f"{here}.reference"))
        elif kind == "Practitioner":
            practitioners.add(name)
        elif kind in UNLISTED:
            raise Unenforceable(
                f"{here}.reference",
                f"a {kind} stands for clinicians and facilities the consent engine cannot "
                "list; name the Practitioners or Organizations",
            )
        elif kind not in NEVER_READING:
            raise Unenforceable(f"{here}.reference", f"{kind} is not a kind of Consent actor")
    return Actors(
        facilities=frozenset(readers) if readers is not None else None,
        practitioners=frozenset(practitioners),
        custodians=frozenset(custodians) if custodians is not None else None,
    )


def _is_custodian(role: object, where: str) -> bool:
    """Tell whether a role is the custodian's; False for a recipient or an uncoded role.

    Codings of other systems beside a v3-ParticipationType one are its translations.
    """
    codings = role.get("coding") if isinstance(role, Mapping) else None
    if not isinstance(codings, list) or not codings:
        return False
    codes = {}
    for j, coding in enumerate(codings):
        if isinstance(coding, Mapping) and coding.get("system") == PARTICIPATION_TYPE_SYSTEM:
            codes[coding.get("code")] = j
    if not codes:
        first = codings[0] if isinstance(codings[0], Mapping) else {}
        raise Unenforceable(
            f"{where}.coding[0]",
            f"{first.get('system')}|{first.get('code')}: {_ROLES_UNDERSTOOD}",
        )
    for code, j in codes.items():
        if code not in RECIPIENT_ROLES | {CUSTODIAN_ROLE}:
            raise Unenforceable(f"{where}.coding[{j}]", f"{code}: {_ROLES_UNDERSTOOD}")
    if CUSTODIAN_ROLE in codes and len(codes) > 1:
        raise Unenforceable(f"{where}.coding", "both a custodian (CST) and a recipient")
    return CUSTODIAN_ROLE in codes


def _named(ref: Mapping[str, Any], where: str, facility_system: str) -> tuple[str, str, bool]:
    """Return an actor's kind, its name, and whether the name is a literal reference
    ("Type/id"); a logical reference is named by its identifier, "system|value", or by
    the facility code for an Organization."""
    kind = ref.get("type")
    if kind is not None and not isinstance(kind, str):
        raise Unenforceable(f"{where}.type", "expected a resource type")
    literal = ref.get("reference")
    if literal is not None:
        match = RELATIVE_REFERENCE.fullmatch(literal) if isinstance(literal, str) else None
        if match is None or match["key"] != literal:
            raise Unenforceable(
                f"{where}.reference", f"{literal!r}: expected a relative reference <Type>/<id>"
            )
        found = literal.partition("/")[0]
        if kind is not None and kind != found:
            raise Unenforceable(f"{where}.type", f"{kind} does not match {literal}")
        return found, literal, True
    identifier = ref.get("identifier")
    if not isinstance(identifier, Mapping):
        raise Unenforceable(where, "expected a reference or an identifier")
    system, value = identifier.get("system"), identifier.get("value")
    if not isinstance(value, str) or not value:
        raise Unenforceable(f"{where}.identifier.value", "missing")
    if kind is None or kind == "Organization":
        if system != facility_system:
            problem = f"expected {facility_system}"
            if kind is None:
                problem += ", or a reference.type (Practitioner, ...) for another system"
            raise Unenforceable(f"{where}.identifier.system", problem)
        return "Organization", value, False
    if not isinstance(system, str) or not system:
        raise Unenforceable(f"{where}.identifier.system", "missing")
    return kind, f"{system}|{value}", False


def _facility(name: str, literal: bool, organizations: Mapping[str, str], where: str) -> str:
    """Return the facility code of an Organization actor."""
    if not literal:
        return name
    code = organizations.get(name)
    if code is None:
        raise Unenforceable(f"{where}.reference", f"{name} is not a known facility")
    return code
