"""ICD-10's hierarchy for provision.code: a code covers its subcodes, a block its categories,
a chapter its blocks.

A code is compared without its dot and its dagger or asterisk mark, in upper case: "F32.1",
"F321" and "f32.1" are one code, and "F32" covers all three. Only the WHO code system is
hierarchical here; the Vietnam pack codes diagnoses in that same system
(fhir_profiles/vn/StructureDefinition-vn-condition.json fixes Condition.code's ICD-10 slice to
it; https://moh.gov.vn/fhir/ValueSet/icd10 is a value set of its codes, not a code system).
"""

import re
from dataclasses import dataclass

ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10"})

# The 22 chapters of WHO ICD-10 Version:2019 and the categories each spans, from the WHO
# browser https://icd.who.int/browse10/2019/en (chapter headings, e.g. "V Mental and
# behavioural disorders F00-F99").
CHAPTERS: dict[str, tuple[str, str]] = {
    "I": ("A00", "B99"),
    "II": ("C00", "D48"),
    "III": ("D50", "D89"),
    "IV": ("E00", "E90"),
    "V": ("F00", "F99"),
    "VI": ("G00", "G99"),
    "VII": ("H00", "H59"),
    "VIII": ("H60", "H95"),
    "IX": ("I00", "I99"),
    "X": ("J00", "J99"),
    "XI": ("K00", "K93"),
    "XII": ("L00", "L99"),
    "XIII": ("M00", "M99"),
    "XIV": ("N00", "N99"),
    "XV": ("O00", "O99"),
    "XVI": ("P00", "P96"),
    "XVII": ("Q00", "Q99"),
    "XVIII": ("R00", "R99"),
    "XIX": ("S00", "T98"),
    "XX": ("V01", "Y98"),
    "XXI": ("Z00", "Z99"),
    "XXII": ("U00", "U85"),
}

_CODE = re.compile(r"[A-Z][0-9]{2}[0-9A-Z]{0,4}")
_BLOCK = re.compile(r"([A-Z][0-9]{2})-([A-Z][0-9]{2})")
_MARKS = "*†+!"


def icd10_key(code: str) -> str | None:
    """Return a code in the form compared (F32.1 -> F321); None when it is not an ICD-10 code."""
    key = code.strip().upper().replace(".", "").rstrip(_MARKS)
    return key if _CODE.fullmatch(key) else None


@dataclass(frozen=True)
class Icd10Codes:
    """The ICD-10 codes a provision names: codes (by prefix) and blocks or chapters (by
    ranges of categories)."""

    prefixes: tuple[str, ...] = ()
    ranges: tuple[tuple[str, str], ...] = ()

    def covers(self, code: str) -> bool:
        """Tell whether a record's ICD-10 code is one of these or below one of them."""
        key = icd10_key(code)
        if key is None:
            return False
        if key.startswith(self.prefixes):
            return True
        category = key[:3]
        return any(low <= category <= high for low, high in self.ranges)


def icd10_span(code: str) -> tuple[str, str] | str | None:
    """Read a provision's ICD-10 code: a range of categories for a chapter ("V") or a block
    ("F30-F39"), a prefix for a code ("F32", "F32.1"); None when it is none of these."""
    if code in CHAPTERS:
        return CHAPTERS[code]
    block = _BLOCK.fullmatch(code.strip().upper())
    if block is not None:
        low, high = block.groups()
        return (low, high) if low <= high else None
    return icd10_key(code)
