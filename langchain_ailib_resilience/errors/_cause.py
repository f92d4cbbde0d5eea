"""Make the provider exception we attach as ``__cause__`` safe to print.

``logger.exception(...)``, ``traceback.print_exc()`` and LangChain's tracers print every exception in the chain
with ``str()``, so a provider error that echoes a key (``Incorrect API key provided: sk-...``, a URL with
``?key=...``) would leak through our otherwise redacted error. The cause is kept, the same object (users debug
with its type, status, response and body, and ``error.__cause__ is exc`` holds): its message (``args``), its
string attributes (``message``, ``detail``...) and its notes are redacted in place, down its own chain. Only when
its ``str()`` still shows a credential afterwards (a ``__str__`` built from something we cannot rewrite) is it
replaced by a ``RedactedCause`` that carries its type name, redacted text and traceback.
"""

from __future__ import annotations

import contextlib

from .redact import redact

_MAX_CHAIN = 8


class RedactedCause(Exception):
    """Stands in for a provider exception whose text could not be redacted in place."""

    def __init__(self, message: str, *, exc_type: str) -> None:
        super().__init__(message)
        self.exc_type = exc_type


def safe_cause(exc: BaseException) -> BaseException:
    """``exc`` with credentials redacted from everything its traceback prints (in place where it can be)."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(link))
        _scrub(link)
        link = link.__cause__ or link.__context__
    try:
        text = str(exc)
    except Exception:
        return exc
    if redact(text) == text:
        return exc
    stand_in = RedactedCause(f"{type(exc).__qualname__}: {redact(text)}", exc_type=type(exc).__qualname__)
    return stand_in.with_traceback(exc.__traceback__)


def _scrub(exc: BaseException) -> None:
    with contextlib.suppress(Exception):  # a type that refuses new args keeps them; safe_cause checks str()
        exc.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in exc.args)
    try:
        attributes = vars(exc)
    except TypeError:  # __slots__ only
        return
    for name, value in list(attributes.items()):
        if isinstance(value, str):
            cleaned = redact(value)
            if cleaned != value:
                with contextlib.suppress(Exception):  # a read-only attribute: safe_cause checks str() after
                    setattr(exc, name, cleaned)
    notes = attributes.get("__notes__")
    if isinstance(notes, list):
        notes[:] = [redact(note) if isinstance(note, str) else note for note in notes]
