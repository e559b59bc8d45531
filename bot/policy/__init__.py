"""Dialogue policy: what to do with a parsed message (answer, clarify, rephrase, hand off ...)."""
