"""Generate synthetic hospitals and their records for tests, demos and load tests."""
