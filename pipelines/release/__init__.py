"""Immutable, verifiable releases of gold tables: create (gated), list, show, diff, verify, export."""
