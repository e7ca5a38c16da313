"""One patient's consent policy: who may see which of their records held by other facilities.

The rules (docs/consent.md says them in plain words):
- A facility always sees its own records of the patient.
- A Consent governs all the person's records, or, when a facility wrote it (`governs`), only
  the records that facility holds: it is silent about any other record.
- A provision covers an access and a record when every condition it states holds: on the
  access, actor (a recipient: the asking facility or clinician), purpose, period; on the
  record, class (resource type), securityLabel (any one), actor (a custodian: the facility
  holding it), data, dataPeriod, code. Within a provision that covers them, the nested
  provisions that also cover them are its exceptions and decide; when none does, the
  provision's own type decides. Among several exceptions that decide, deny overrides permit.
- Among several active Consents, deny overrides permit; a Consent that covers nothing stays
  silent; when all are silent, the deployment's default decides.
- Break the glass (purpose ETREAT, declared) reveals everything the consents hide except what
  a deny names ETREAT for: a deny stands against an emergency when its own purpose, or that of
  a provision it is nested in, lists ETREAT.
`decide` answers for one record version by walking the provisions.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType
from typing import Any

from consent.model import FACILITY_SYSTEM, Access, Decision, Default, Record
from consent.parse import ParsedConsent, consent_name, parse_consent
from consent.provision import Provision

_NONE: Mapping[str, Any] = MappingProxyType({})

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
        related: Mapping[str, frozenset[str]] = _NONE,
        governs: Mapping[str, str | None] = _NONE,
    ) -> "Policy":
        """Read a patient's Consent resources, skipping those not active or not patient-privacy.

        `organizations` maps literal references ("Organization/abc") to facility codes; an
        actor may also name a facility by an identifier of `facility_system`. Dates without a
        time are days in `zone` (the country's time zone). `related` maps each record that
        `data_references` lists to the references it makes. `governs` maps "Consent/<id>" to
        the facility whose records that Consent governs (absent or None: all the person's).
        Raises MalformedConsent (a ValueError) naming the element path of what cannot be read.
        """
        if default not in ("deny", "permit"):
            raise ValueError(f"default must be 'deny' or 'permit', not {default!r}")
        resources = list(consents)
        names = {consent_name(resource, i) for i, resource in enumerate(resources)}
        strangers = sorted(set(governs) - names)
        if strangers:
            raise ValueError(f"governs names {', '.join(strangers)}, not among the consents")
        parsed = (
            parse_consent(
                resource,
                organizations,
                facility_system,
                zone,
                i,
                related=related,
                governs=governs.get(consent_name(resource, i)),
            )
            for i, resource in enumerate(resources)
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

    def _in_force(self, at: datetime) -> Iterable[ParsedConsent]:
        for consent in self.consents:
            if consent.root is not None and (consent.issued is None or consent.issued <= at):
                yield consent

    def _verdicts(self, access: Access, record: Record) -> Iterable[_Verdict | None]:
        for consent in self._in_force(access.at):
            assert consent.root is not None
            if consent.governs is None or consent.governs == record.facility:
                yield _verdict(consent.root, consent.name, access, record, False)


def _verdict(
    provision: Provision, consent: str, access: Access, record: Record, purpose_named: bool
) -> _Verdict | None:
    """Return how the provision decides for this access and record; None when it does not cover
    them. `purpose_named`: a provision it is nested in lists purposes."""
    if not (provision.covers_access(access) and provision.covers_record(record)):
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
