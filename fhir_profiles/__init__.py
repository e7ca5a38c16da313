"""National profiles, code systems and value sets as FHIR JSON, and their validator (arrives with the profiles issue)."""
