"""FHIR R4 REST interactions, one module each."""
