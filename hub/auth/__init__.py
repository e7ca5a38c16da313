"""Identities, tokens and scopes: who calls the hub and what they may do."""
