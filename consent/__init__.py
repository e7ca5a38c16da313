"""The consent policy engine: pure decisions from Consent resources (arrives with the security issue)."""
