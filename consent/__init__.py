"""The consent policy engine: pure decisions from Consent resources (security issue)."""
