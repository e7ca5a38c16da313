"""The roles a caller of the hub can have."""

from enum import StrEnum


class Role(StrEnum):
    """What kind of caller an identity is; it bounds the scopes its tokens can carry."""

    ADMIN = "admin"  # registers facilities, practitioners and credentials
    FACILITY = "facility"  # a hospital's system sending and reading its own records
    CLINICIAN = "clinician"  # a person working at a facility, linked to a Practitioner
    MINISTRY = "ministry"  # an analyst reading aggregate reports only
    AUDITOR = "auditor"  # reads the audit trail
    PATIENT = "patient"  # a citizen reading their own record

    @property
    def is_person(self) -> bool:
        """Tell whether a person uses this role (and may log in with a username)."""
        return self is not Role.FACILITY
