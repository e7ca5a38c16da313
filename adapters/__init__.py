"""Turn hospital records into FHIR R4 transaction Bundles and ship them to the hub."""
