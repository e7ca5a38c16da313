"""The audit trail: one FHIR R4 AuditEvent for every FHIR interaction, stored append-only.
https://hl7.org/fhir/R4/auditevent.html
"""
