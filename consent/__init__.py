"""The consent policy engine: pure decisions from Consent resources, no I/O of its own.

`Policy.from_consents` reads a patient's Consents; `decide` answers for one record version
(`Record.of` describes it). `organization_references` and `data_references` list what the
hub must look up first. See docs/consent.md.
"""

from consent.model import Access, Decision, Record, label_key, security_labels
from consent.parse import MalformedConsent, data_references, organization_references
from consent.policy import Policy

__all__ = [
    "Access",
    "Decision",
    "MalformedConsent",
    "Policy",
    "Record",
    "data_references",
    "label_key",
    "organization_references",
    "security_labels",
]
