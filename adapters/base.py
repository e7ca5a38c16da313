"""What every hospital format's adapter shares: its output, the facility it speaks for, and
the transaction Bundle it builds.

An adapter is a pure function from the hospital's own records to FHIR R4 transaction Bundles:
`parse(source) -> Iterator[Bundle | Rejection]`, one Bundle per record (a message, an episode
of care, a row group), or a Rejection saying why a record cannot be taken. Every Bundle names
the sending facility (its Organization, by national facility code) and writes each resource
conditionally on the record's own identifier, so sending the same record twice never creates
a second copy and a corrected record updates the first.
"""

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Any, Protocol
from urllib.parse import quote

Resource = dict[str, Any]
Bundle = dict[str, Any]

FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
CCCD_SYSTEM = "http://fhir.hl7.org.vn/core/sid/cccd"
BHYT_SYSTEM = "https://moh.gov.vn/fhir/sid/bhyt"
# A practitioner's practising certificate (chứng chỉ hành nghề), unique nationally.
CCHN_SYSTEM = "https://moh.gov.vn/fhir/sid/cchn"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ID_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
TZ_VN = timezone(timedelta(hours=7))
_URN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://ehrhub.invalid/adapters")


@dataclass(frozen=True)
class Facility:
    """The sending facility: its national facility code (e.g. MA_CSKCB 79001) and name."""

    code: str
    name: str = ""

    def system(self, kind: str) -> str:
        """Return the identifier system of this facility's own numbers of one kind
        (`mrn`, `visit`, `order`, ...): unique nationally, since facility codes are."""
        return f"https://moh.gov.vn/fhir/sid/{kind}/{self.code}"

    def organization(self) -> Resource:
        """Return the facility's Organization."""
        org: Resource = {
            "resourceType": "Organization",
            "identifier": [{"system": FACILITY_SYSTEM, "value": self.code}],
            "active": True,
        }
        if self.name:
            org["name"] = self.name
        return org


@dataclass(frozen=True)
class Rejection:
    """A record an adapter cannot turn into FHIR, and why, in words a hospital clerk can act on."""

    source: str  # where: file, message number and control id, table and record
    reason: str


Output = Bundle | Rejection


class Adapter(Protocol):
    """A hospital format: its records in, transaction Bundles (or rejections) out."""

    def parse(self, source: Any) -> Iterator[Output]: ...


def identifier(system: str, value: str, type_code: str | None = None) -> Resource:
    """Return an Identifier, typed with a v2-0203 code when given (MR, NI, SN, VN, ...)."""
    found: Resource = {"system": system, "value": value}
    if type_code:
        found["type"] = {"coding": [{"system": ID_TYPE_SYSTEM, "code": type_code}]}
    return found


def identifier_query(system: str, value: str) -> str:
    """Return the search criteria `identifier=system|value`, the value escaped for FHIR search
    (`\\ , $ |`) and for a URL: what `BundleBuilder.put` and `post` take."""
    escaped = re.sub(r"([\\,$|])", r"\\\1", value)
    return f"identifier={quote(system, safe=':/')}|{quote(escaped, safe='')}"


@dataclass
class BundleBuilder:
    """A transaction Bundle under construction, attributed to one facility.

    `put` writes a resource by conditional update on its identifier (created if new, updated
    if sent again); `post` creates it unless one with that identifier exists. Both return the
    entry's fullUrl, to be used in references between the Bundle's resources.
    """

    facility: Facility
    entries: list[Resource] = field(default_factory=list)
    _urls: dict[str, str] = field(default_factory=dict)

    def _url(self, key: str) -> str:
        # Stable for the same record, so that a re-sent Bundle is the same Bundle.
        name = f"{self.facility.code}|{key}"
        return self._urls.setdefault(key, f"urn:uuid:{uuid.uuid5(_URN_NAMESPACE, name)}")

    def organization(self) -> str:
        """Add the facility's Organization (once) and return its fullUrl."""
        query = identifier_query(FACILITY_SYSTEM, self.facility.code)
        key = f"Organization?{query}"
        if key not in self._urls:
            self.post(self.facility.organization(), query)
        return self._urls[key]

    def put(self, resource: Resource, query: str) -> str:
        """Add a conditional update `PUT Type?query` and return the entry's fullUrl."""
        request = {"method": "PUT", "url": f"{resource['resourceType']}?{query}"}
        return self._add(resource, query, request)

    def post(self, resource: Resource, query: str) -> str:
        """Add a conditional create (`ifNoneExist: query`) and return the entry's fullUrl."""
        request = {"method": "POST", "url": resource["resourceType"], "ifNoneExist": query}
        return self._add(resource, query, request)

    def _add(self, resource: Resource, query: str, request: Resource) -> str:
        key = f"{resource['resourceType']}?{query}"
        if key in self._urls and any(e["fullUrl"] == self._urls[key] for e in self.entries):
            return self._urls[key]  # the same record twice in one message: written once
        url = self._url(key)
        self.entries.append({"fullUrl": url, "resource": resource, "request": request})
        return url

    def bundle(self) -> Bundle:
        """Return the transaction Bundle."""
        return {"resourceType": "Bundle", "type": "transaction", "entry": list(self.entries)}
