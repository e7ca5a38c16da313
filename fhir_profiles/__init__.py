"""National profiles, code systems, value sets and their validator (profiles issue)."""
