"""The ``rasa`` NLU backend: a real Rasa server classifies, our pipeline does the rest.

Rasa (``POST /model/parse``) gives the intent and its ranking; the native pipeline's rule components add
what Rasa does not know: language and script, our entities, severity and sentiment, the per-language
fallback thresholds and the ambiguity flag. When Rasa cannot answer — a timeout, a refused connection, a
5xx, a 401 from a wrong token — the native pipeline answers instead; the backend logs the change of state
once (not a traceback per message), counts every degraded parse, and reports the state for ``/readyz``.
After a failure Rasa is left alone for ``retry_after`` seconds so a dead server costs no timeouts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from bot.contracts.parse import Entity, Parse
from bot.cpu import CpuPool, run_cpu
from bot.errors import InputError, TriageError
from bot.metrics import Metrics
from bot.nlu.backend import ParseContext
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.state import FALLBACK_INTENT, ParseState
from bot.settings import Settings

logger = logging.getLogger(__name__)

# The native components that run on top of Rasa's classification, in the pipeline's order. The
# tokenizer, the sentence encoder and the classifier are Rasa's job here.
ENRICHING = ("normalizer", "entity_extractor", "fallback", "severity", "sentiment")
PARSE_PATH = "/model/parse"


class RasaUnavailable(TriageError):
    """Rasa did not answer a parse usefully; ``reason`` is the metric label (timeout, unreachable,
    unauthorized, server_error, bad_response)."""

    retryable = True

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"rasa {reason}: {detail}")
        self.reason, self.detail = reason, detail


class RasaBackend:
    """Classifies with a Rasa server; falls back to ``native`` (see the module docstring).

    ``strict=True`` raises :class:`RasaUnavailable` instead of falling back (evaluations must measure Rasa,
    never the native pipeline in its place). ``on_degraded(reason)`` is called for every parse the native
    pipeline answered — the app counts them in ``triage_nlu_degraded``.
    """

    name = "rasa"

    def __init__(
        self,
        url: str,
        native: NLUPipeline,
        token: str | None = None,
        timeout: float = 2.0,
        retry_after: float = 5.0,
        strict: bool = False,
        on_degraded: Callable[[str], None] | None = None,
        cpu: CpuPool | None = None,
    ) -> None:
        self.url, self.native, self.token = url.rstrip("/"), native, token
        self.timeout, self.retry_after, self.strict = timeout, retry_after, strict
        self.on_degraded, self.cpu = on_degraded, cpu
        self._lock = threading.Lock()
        self._down_since: float | None = None  # time.time() of the first failure in a row
        self._retry_at = 0.0  # time.monotonic() before which Rasa is not asked
        self._reason = ""
        self._async_client: httpx.AsyncClient | None = None
        self._client: httpx.Client | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        native: NLUPipeline,
        metrics: Metrics | None = None,
        cpu: CpuPool | None = None,
    ) -> RasaBackend:
        counter = metrics.nlu_degraded if metrics is not None else None
        return cls(
            settings.rasa_url,
            native,
            settings.rasa_token.get_secret_value() if settings.rasa_token else None,
            timeout=settings.rasa_timeout_seconds,
            on_degraded=(lambda reason: counter.labels(cls.name, reason).inc()) if counter else None,
            cpu=cpu,
        )

    # ---------------------------------------------------------------- interface
    @property
    def intents(self) -> Sequence[str]:
        return self.native.intents

    @property
    def degraded(self) -> str | None:
        """Why parses are answered by the native pipeline right now; None while Rasa answers."""
        with self._lock:
            if self._down_since is None:
                return None
            since = dt.datetime.fromtimestamp(self._down_since, dt.UTC).isoformat(timespec="seconds")
            return f"{self._reason} since {since}; the native pipeline answers"

    async def parse(self, text: str, context: ParseContext | None = None) -> Parse:
        if not self._skipping():
            if self._async_client is None:
                self._async_client = httpx.AsyncClient(timeout=self.timeout)
            try:
                response = await self._async_client.post(**self._request(text))
                # our language, entities, severity and sentiment: CPU work, off the loop as a native parse
                return await run_cpu(self.cpu, self._enrich, text, self._decode(response), context)
            except (httpx.HTTPError, RasaUnavailable) as exc:
                self._failed(exc)
        return await run_cpu(self.cpu, self._native, text, context)  # the full pipeline: off the loop

    def parse_now(self, text: str, context: ParseContext | None = None) -> Parse:
        if not self._skipping():
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout)
            try:
                response = self._client.post(**self._request(text))
                return self._enrich(text, self._decode(response), context)
            except (httpx.HTTPError, RasaUnavailable) as exc:
                self._failed(exc)
        return self._native(text, context)

    async def aclose(self) -> None:
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---------------------------------------------------------------- the call
    def _request(self, text: str) -> dict[str, Any]:
        params = {"token": self.token} if self.token else None  # Rasa's --auth-token: ?token=
        return {"url": self.url + PARSE_PATH, "json": {"text": text}, "params": params}

    def _decode(self, response: httpx.Response) -> Mapping[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise RasaUnavailable("unauthorized", f"HTTP {status}: check TRIAGE_RASA_TOKEN")
        if status >= 500:
            raise RasaUnavailable("server_error", f"HTTP {status}: {response.text[:200]}")
        if status != 200:  # 400 (bad request), 409 (no model loaded), 404 (not a Rasa server)
            raise RasaUnavailable("bad_response", f"HTTP {status}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError as exc:
            raise RasaUnavailable("bad_response", f"not JSON: {exc}") from None
        if not isinstance(body, dict) or not isinstance(body.get("intent"), dict):
            raise RasaUnavailable("bad_response", "no 'intent' object in the reply")
        return body

    # ---------------------------------------------------------------- mapping
    def _enrich(self, text: str, rasa: Mapping[str, Any], context: ParseContext | None) -> Parse:
        """Rasa's ranking through our fallback, plus our language, entities, severity and sentiment."""
        try:
            ranking = _ranking(rasa)
            rasa_entities = [
                Entity.from_rasa(e, f"entities[{i}]", text) for i, e in enumerate(_entities(rasa))
            ]
        except InputError as exc:
            raise RasaUnavailable("bad_response", str(exc)) from None
        rasa_fell_back = rasa["intent"].get("name") in (FALLBACK_INTENT, None)
        state = ParseState(text, self._today(context))
        state.ranking = ranking
        for (name, _), component in zip(self.native.config.steps, self.native.components, strict=True):
            if name not in ENRICHING:
                continue
            component.process(state)
            if name == "fallback" and rasa_fell_back:
                # Rasa's FallbackClassifier had the last word on its own confidences.
                state.intent = FALLBACK_INTENT
        parse = Parse.from_rasa(state.to_parse())
        ours = parse.entities
        extra = tuple(e for e in rasa_entities if not any(_overlap(e, o) for o in ours))
        self._recovered()
        return parse if not extra else _with_entities(parse, ours + extra)

    def _today(self, context: ParseContext | None) -> dt.date:
        return context.today if context and context.today else self.native.today()

    def _native(self, text: str, context: ParseContext | None) -> Parse:
        if self.on_degraded is not None:
            self.on_degraded(self._reason or "unavailable")
        return self.native.parse_typed(text, context.today if context else None)

    # ---------------------------------------------------------------- degradation
    def _skipping(self) -> bool:
        with self._lock:
            return self._down_since is not None and time.monotonic() < self._retry_at

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, RasaUnavailable):
            failure = exc
        elif isinstance(exc, httpx.TimeoutException):
            failure = RasaUnavailable("timeout", f"no answer within {self.timeout:g} s")
        else:
            failure = RasaUnavailable("unreachable", f"{type(exc).__name__}: {exc}")
        if self.strict:
            raise failure from None
        with self._lock:
            first = self._down_since is None or failure.reason != self._reason
            if self._down_since is None:
                self._down_since = time.time()
            self._reason = failure.reason
            self._retry_at = time.monotonic() + self.retry_after
        if first:  # once per change of state, not a traceback per message
            logger.warning(
                "rasa at %s: %s; the native pipeline answers (next try in %g s)",
                self.url,
                failure.detail,
                self.retry_after,
            )

    def _recovered(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            down = time.time() - self._down_since
            self._down_since, self._reason = None, ""
        logger.warning("rasa at %s answers again after %.0f s degraded", self.url, down)


def _ranking(rasa: Mapping[str, Any]) -> list[tuple[str, float]]:
    """Rasa's ``intent_ranking`` without its ``nlu_fallback`` entry (our fallback decides again), best
    first; a reply without a ranking ranks its one intent."""
    raw = rasa.get("intent_ranking") or [rasa["intent"]]
    if not isinstance(raw, list):
        raise InputError("parse field 'intent_ranking' must be a list")
    ranking = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InputError(f"parse field 'intent_ranking[{i}]' needs a 'name' string")
        confidence = item.get("confidence")
        if isinstance(confidence, bool) or not isinstance(confidence, int | float):
            raise InputError(f"parse field 'intent_ranking[{i}].confidence' must be a number")
        if item["name"] != FALLBACK_INTENT:
            ranking.append((item["name"], float(confidence)))
    ranking.sort(key=lambda pair: -pair[1])
    return ranking


def _entities(rasa: Mapping[str, Any]) -> list[Any]:
    entities = rasa.get("entities") or []
    if not isinstance(entities, list):
        raise InputError("parse field 'entities' must be a list")
    return entities


def _overlap(a: Entity, b: Entity) -> bool:
    return a.start < b.end and b.start < a.end


def _with_entities(parse: Parse, entities: tuple[Entity, ...]) -> Parse:
    return dataclasses.replace(parse, entities=tuple(sorted(entities, key=lambda e: e.start)))
