"""FHIR R4 base rules the pydantic models leave out: required code bindings and primitive JSON
types, generated from the HL7 FHIR R4 4.0.1 definitions (CC0)."""

from fhir_profiles.base.rules import base_problems

__all__ = ["base_problems"]
