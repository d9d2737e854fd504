"""Shared test helpers: polling with a deadline, real infrastructure, the in-process stack."""
