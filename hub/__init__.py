"""EHR Hub: a national FHIR R4 interoperability hub on MongoDB."""

__version__ = "0.1.0"
