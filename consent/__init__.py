"""The consent policy engine: pure decisions from Consent resources, no I/O of its own.

`Policy.from_consents` reads a patient's Consents; `decide` answers for one record; `grant`
compiles what one access may see, and `grant_filter` turns that into a MongoDB filter.
See docs/consent.md.
"""

from consent.grant import AllOf, AnyOf, Condition, Grant, LabelIn, TypeIn
from consent.model import Access, Decision, Record
from consent.parse import MalformedConsent, organization_references
from consent.policy import Policy
from consent.query import condition_filter, grant_filter, label_key, label_of, security_labels

__all__ = [
    "Access",
    "AllOf",
    "AnyOf",
    "Condition",
    "Decision",
    "Grant",
    "LabelIn",
    "MalformedConsent",
    "Policy",
    "Record",
    "TypeIn",
    "condition_filter",
    "grant_filter",
    "label_key",
    "label_of",
    "organization_references",
    "security_labels",
]
