"""The request log keeps a bounded part of each body: a huge prompt or a long soak cannot grow it without bound."""

from __future__ import annotations

import gc
import json
import tracemalloc

import httpx

from langchain_ailib_resilience.testing import ProviderEmulator
from langchain_ailib_resilience.testing.emulator._behaviours import BODY_LOG_LIMIT


def _post(emu: ProviderEmulator, body: dict) -> httpx.Response:
    payload = json.dumps(body).encode()
    with httpx.Client() as client:
        return client.post(
            f"{emu.openai_base}/chat/completions",
            content=payload,
            headers={"content-type": "application/json"},
            timeout=30,
        )


def test_small_bodies_are_kept_whole(provider_emulator: ProviderEmulator) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    assert _post(provider_emulator, body).status_code == 200
    record = provider_emulator.requests[0]
    assert record.body == body
    assert not record.body_truncated
    assert record.body_size == len(json.dumps(body).encode())


def test_a_large_body_keeps_only_its_small_fields(provider_emulator: ProviderEmulator) -> None:
    content = "x" * (2 * BODY_LOG_LIMIT)
    body = {"model": "m", "stream": False, "max_tokens": 5, "messages": [{"role": "user", "content": content}]}
    assert _post(provider_emulator, body).status_code == 200
    record = provider_emulator.requests[0]
    assert record.body_truncated
    assert record.body_size > 2 * BODY_LOG_LIMIT
    assert dict(record.body) == {"model": "m", "stream": False, "max_tokens": 5}
    assert len(json.dumps(record.body)) <= BODY_LOG_LIMIT


def test_large_bodies_are_not_retained(provider_emulator: ProviderEmulator) -> None:
    content = "y" * (4 * 1024 * 1024)
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    payload = json.dumps(body).encode()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        with httpx.Client() as client:
            for _ in range(4):
                response = client.post(
                    f"{provider_emulator.openai_base}/chat/completions",
                    content=payload,
                    headers={"content-type": "application/json"},
                    timeout=30,
                )
                assert response.status_code == 200
        del response
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(provider_emulator.requests) == 4
    assert after - before < len(payload), f"the log kept {after - before} bytes after 4 bodies of {len(payload)}"
