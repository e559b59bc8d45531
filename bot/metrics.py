"""Prometheus metrics, on a registry per app so tests and several apps in one process stay apart."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("triage_messages", "User messages received", ["channel"], registry=r)
        self.duplicates = Counter(
            "triage_duplicate_messages", "Retried messages answered from the first delivery", registry=r
        )
        self.intents = Counter("triage_intents", "Messages by detected intent", ["intent"], registry=r)
        self.fallbacks = Counter("triage_fallbacks", "Replies asking the user to rephrase", registry=r)
        self.handoffs = Counter("triage_handoffs", "Handoffs to a human", ["reason", "severity"], registry=r)
        self.answers = Counter(
            "triage_kb_answers", "Knowledge-base answers given or declined", ["result"], registry=r
        )
        self.nlu_degraded = Counter(
            "triage_nlu_degraded",
            "Parses the native pipeline answered because the NLU backend (Rasa) could not",
            ["backend", "reason"],
            registry=r,
        )
        self.parse_latency = Histogram(
            "triage_parse_seconds", "NLU parse time", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.reply_latency = Histogram(
            "triage_reply_seconds", "Time from message to stored reply", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.gc_pause = Histogram(
            "triage_gc_pause_seconds",
            "Garbage-collector pauses (the event loop stands still), by generation",
            ["generation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.websockets = Counter(
            "triage_websocket_connections", "Websocket connections accepted", ["endpoint"], registry=r
        )
