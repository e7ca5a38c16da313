"""XML130: Vietnam's health-insurance claim XML (QĐ 130/QĐ-BYT as amended by 4750/QĐ-BYT;
the older QĐ 4210 field names accepted) to FHIR R4 transaction Bundles.

A submission file is a GIAMDINHHS envelope of HOSO, one per episode of care, each holding
base64-encoded tables (XML1 TONG_HOP, XML2 drugs, XML3 services, XML4 results, XML5 progress
notes, XML7 discharge paper, XML8 summary) that share the key MA_LK. `parse` streams the file
and yields one Bundle per HOSO, or a Rejection naming the table, record and field at fault.

Mapping: XML1 -> Patient (keyed by MA_BN, carrying SO_CCCD), Coverage per card, Encounter
(MA_LK), Condition per ICD-10 code; XML2 -> MedicationRequest and MedicationDispense; XML3 ->
Procedure (services) and ChargeItem (every row); XML4 -> Observation, grouped per service in a
DiagnosticReport; XML5, XML7, XML8 -> DocumentReference (plain text).

`fields.json` is a copy of `xml130_qd4750_fields.json` (the field tables, extracted from the
validation workbook published with the decisions, GitHub `dh-hos/Mo-ta-he-thong`; the
decisions' content is a legal normative text), taken from the project's shared reference data.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from adapters.base import Facility, Output, Rejection
from adapters.xml130 import envelope, mapping


def parse(source: str | Path | IO[bytes], facility: Facility | None = None) -> Iterator[Output]:
    """Yield one Bundle (or Rejection) per HOSO of an XML130 file, read HOSO by HOSO.

    The facility is THONGTINDONVI/MACSKCB (or XML1 MA_CSKCB) unless given.
    """
    name = str(source) if isinstance(source, str | Path) else getattr(source, "name", "<stream>")
    try:
        for hoso in envelope.read(source):
            yield mapping.bundle(hoso, facility, str(name))
    except envelope.EnvelopeError as e:
        yield Rejection(str(name), f"not an XML130 file: {e}")
