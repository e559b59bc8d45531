"""Handoff gateway: the queue, live relay and agent console (built in the handoff issue)."""
