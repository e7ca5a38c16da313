"""One patient's consent policy: who may see which of their records held by other facilities.

The rules (docs/consent.md says them in plain words):
- A facility always sees its own records of the patient.
- A provision covers an access and a record when every condition it states holds: actor
  (the asking facility), purpose, period, class (resource type), securityLabel (any one of
  them on the record). Within a provision that covers them, the nested provisions that also
  cover them are its exceptions and decide; when none does, the provision's own type decides.
  Among several exceptions that decide, deny overrides permit.
- Among several active Consents, deny overrides permit; a Consent that covers nothing stays
  silent; when all are silent, the deployment's default decides.
- Break the glass (purpose ETREAT, declared) reveals everything the consents hide except what
  a deny names ETREAT for: a deny stands against an emergency when its own purpose, or that of
  a provision it is nested in, lists ETREAT.
`decide` answers for one record by walking the provisions; `grant` compiles the same rules
into a Grant, a database filter's worth of data, without looking at any record.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from consent.grant import FALSE, TRUE, Condition, Grant, all_of, any_of, negate, where
from consent.model import FACILITY_SYSTEM, Access, Decision, Default, Record
from consent.parse import ParsedConsent, Provision, parse_consent

# How a covering provision decides, by strength: among several, the strongest wins.
_PERMIT, _DENY, _DENY_IN_EMERGENCY = 1, 2, 3


@dataclass(frozen=True)
class _Verdict:
    strength: int
    consent: str
    path: str

    def __str__(self) -> str:
        verb = "permitted" if self.strength == _PERMIT else "denied"
        return f"{verb} by {self.consent} at {self.path}"


@dataclass(frozen=True)
class _Compiled:
    """Where a provision decides deny (all of it, and the part that stands in emergencies) and
    where it decides permit, as conditions on the record."""

    deny: Condition
    deny_in_emergency: Condition
    permit: Condition


_SILENT = _Compiled(FALSE, FALSE, FALSE)


@dataclass(frozen=True)
class Policy:
    """The active patient-privacy Consents of one patient and the deployment's default."""

    consents: tuple[ParsedConsent, ...]
    default: Default

    @classmethod
    def from_consents(
        cls,
        consents: Iterable[Mapping[str, Any]],
        organizations: Mapping[str, str],
        default: str,
        *,
        facility_system: str = FACILITY_SYSTEM,
        zone: tzinfo = UTC,
    ) -> "Policy":
        """Read a patient's Consent resources, skipping those not active or not patient-privacy.

        `organizations` maps literal references ("Organization/abc") to facility codes; an
        actor may also name a facility by an identifier of `facility_system`. Dates without a
        time are days in `zone` (the country's time zone). Raises
        MalformedConsent (a ValueError) naming the element path of what cannot be read.
        """
        if default not in ("deny", "permit"):
            raise ValueError(f"default must be 'deny' or 'permit', not {default!r}")
        parsed = (
            parse_consent(resource, organizations, facility_system, zone, i)
            for i, resource in enumerate(consents)
        )
        return cls(
            tuple(c for c in parsed if c is not None), "permit" if default == "permit" else "deny"
        )

    def decide(self, access: Access, record: Record) -> Decision:
        """Decide whether the access may see the record, and why."""
        if record.facility == access.facility:
            return Decision(True, f"record held by the asking facility {access.facility}")
        verdict = max(
            (v for v in self._verdicts(access, record) if v is not None),
            key=lambda v: v.strength,
            default=None,
        )
        if verdict is None:
            allowed = self.default == "permit"
            reason = f"no active consent covers this access; default {self.default}"
        else:
            allowed = verdict.strength == _PERMIT
            reason = str(verdict)
        if allowed or not access.break_glass:
            return Decision(allowed, reason)
        if verdict is not None and verdict.strength == _DENY_IN_EMERGENCY:
            return Decision(False, f"{reason}, even in emergencies")
        return Decision(True, f"break the glass over: {reason}", by_break_glass=True)

    def grant(self, access: Access) -> Grant:
        """Compile everything `decide` would allow this access into a Grant."""
        compiled = [_compile(c.root, access, False) for c in self._in_force(access.at)]
        deny = any_of(*(c.deny for c in compiled))
        permit = TRUE if self.default == "permit" else any_of(*(c.permit for c in compiled))
        normal = all_of(negate(deny), permit)
        if not access.break_glass:
            return Grant(access.facility, normal)
        standing = any_of(*(c.deny_in_emergency for c in compiled))
        return Grant(access.facility, negate(standing), without_break_glass=normal)

    def _in_force(self, at: datetime) -> Iterable[ParsedConsent]:
        for consent in self.consents:
            if consent.root is not None and (consent.issued is None or consent.issued <= at):
                yield consent

    def _verdicts(self, access: Access, record: Record) -> Iterable[_Verdict | None]:
        for consent in self._in_force(access.at):
            assert consent.root is not None
            yield _verdict(consent.root, consent.name, access, record, False)


def _verdict(
    provision: Provision, consent: str, access: Access, record: Record, purpose_named: bool
) -> _Verdict | None:
    """Return how the provision decides for this access and record; None when it does not cover
    them. `purpose_named`: a provision it is nested in lists purposes."""
    if not (
        provision.covers_access(access.facility, access.purpose, access.at)
        and provision.covers_record(record.resource_type, record.labels)
    ):
        return None
    purpose_named = purpose_named or provision.purposes is not None
    exceptions = (
        _verdict(nested, consent, access, record, purpose_named) for nested in provision.provisions
    )
    strongest = max(
        (v for v in exceptions if v is not None), key=lambda v: v.strength, default=None
    )
    if strongest is not None:
        return strongest
    if provision.effect == "permit":
        return _Verdict(_PERMIT, consent, provision.path)
    return _Verdict(_DENY_IN_EMERGENCY if purpose_named else _DENY, consent, provision.path)


def _compile(provision: Provision | None, access: Access, purpose_named: bool) -> _Compiled:
    """Return, as conditions on the record, where the provision decides deny and permit for
    this access: `_verdict`'s rules, evaluated for all records at once."""
    if provision is None or not provision.covers_access(access.facility, access.purpose, access.at):
        return _SILENT
    covered = where(provision.classes, provision.labels)
    purpose_named = purpose_named or provision.purposes is not None
    nested = [
        (where(n.classes, n.labels), _compile(n, access, purpose_named))
        for n in provision.provisions
        if n.covers_access(access.facility, access.purpose, access.at)
    ]
    no_exception = negate(any_of(*(cover for cover, _ in nested)))
    deny = any_of(*(c.deny for _, c in nested))
    standing = any_of(*(c.deny_in_emergency for _, c in nested))
    permit = any_of(*(c.permit for _, c in nested))
    if provision.effect == "deny":
        own_standing = no_exception if purpose_named else FALSE
        return _Compiled(
            deny=all_of(covered, any_of(deny, no_exception)),
            deny_in_emergency=all_of(covered, any_of(standing, own_standing)),
            permit=all_of(covered, negate(deny), permit),
        )
    return _Compiled(
        deny=all_of(covered, deny),
        deny_in_emergency=all_of(covered, standing),
        permit=all_of(covered, negate(deny), any_of(permit, no_exception)),
    )
