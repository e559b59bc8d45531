"""The project's error hierarchy: every error says what went wrong and whether retrying can help."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class TriageError(Exception):
    """Base class. ``retryable`` tells callers whether the same call may succeed later."""

    retryable = False


@dataclass
class DataError(TriageError):
    """Bad training data or article: names the file, the line and the reason."""

    path: Path | str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.reason}"


class ConfigError(TriageError):
    """A pipeline or settings problem the operator must fix (the message says how)."""


class ModelNotFoundError(TriageError):
    """No trained model where one was expected."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no trained model at {path}; run `triage train` (or `make train`) first")
        self.path = path


class InputError(TriageError):
    """Input a caller sent that cannot be processed (too large, not text)."""


class MessageTooLarge(InputError):
    """A message over the configured size limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"message is {size:,} characters; the limit is {limit:,}. Send a shorter message "
            "or attach the log as a file"
        )
        self.size, self.limit = size, limit


class MalformedPayload(InputError):
    """A request body that cannot be parsed (malformed JSON or XML, bad encryption): 400."""


class PayloadTooLarge(MessageTooLarge):
    """A request body over the endpoint's byte limit: 413."""

    def __init__(self, size: int, limit: int) -> None:
        InputError.__init__(self, f"the request body is {size:,} bytes; the limit is {limit:,}")
        self.size, self.limit = size, limit


class UnsupportedMediaType(InputError):
    """An upload whose content is none of the accepted kinds (sniffed, not taken from its name): 415."""


class EmptyMessage(InputError):
    """A message with nothing but whitespace in it."""

    def __init__(self, message: str = "the message is empty; type something to send") -> None:
        super().__init__(message)


class AuthError(TriageError):
    """A missing, wrong or expired token."""


class Unavailable(TriageError):
    """A dependency (Redis) is down; the same request may succeed shortly."""

    retryable = True


class StillProcessing(Unavailable):
    """A message with the same client_msg_id is still being processed; retry shortly for its stored reply."""


class NotFound(TriageError):
    """An unknown conversation, ticket or article."""


class Forbidden(TriageError):
    """Authenticated, but not allowed to act on this (another agent's conversation)."""


class Conflict(TriageError):
    """The state changed under the caller: taken by someone else, or at capacity."""


class AlreadyExists(Conflict):
    """Something with this id or name exists already (a conversation, an agent)."""


class RateLimited(AuthError):
    """Too many attempts; ``retry_after`` seconds until the next is accepted."""

    retryable = True

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
