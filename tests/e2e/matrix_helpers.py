"""What the fault matrices share: one input's outcome, and running a call (sync, async, streamed) into one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass
class Outcome:
    """One input's result: the answer (or the text streamed before the error) and the error, if any."""

    text: str = ""
    error: BaseException | None = None


def text_of_message(message: Any) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def text_of_response(response: Any) -> str:
    return response.choices[0].message.content or ""


def text_of_delta(chunk: Any) -> str:
    return (chunk.choices[0].delta.content or "") if chunk.choices else ""


def call(fn: Callable[[], str]) -> Outcome:
    try:
        return Outcome(fn())
    except Exception as exc:
        return Outcome(error=exc)


async def acall(fn: Callable[[], Any], text_of: Callable[[Any], str]) -> Outcome:
    try:
        return Outcome(text_of(await fn()))
    except Exception as exc:
        return Outcome(error=exc)


def drain(open_stream: Callable[[], Iterable[Any]], text_of: Callable[[Any], str]) -> Outcome:
    parts: list[str] = []
    try:
        for chunk in open_stream():
            parts.append(text_of(chunk))
    except Exception as exc:
        return Outcome("".join(parts), exc)
    return Outcome("".join(parts))


async def agen(stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
    return stream


async def adrain(open_stream: Callable[[], Any], text_of: Callable[[Any], str]) -> Outcome:
    parts: list[str] = []
    try:
        async for chunk in await open_stream():
            parts.append(text_of(chunk))
    except Exception as exc:
        return Outcome("".join(parts), exc)
    return Outcome("".join(parts))


async def eventually(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
