"""Re-record the vcrpy cassettes in ``cassettes/`` from LiteLLM and langchain-litellm talking to the emulator.

Usage: ``.venv/bin/python scripts/record_cassettes.py [NAME ...]`` (no names: all of them).

Each cassette holds one scenario (a provider format and a fault) called twice: once synchronously (httpx) and once
asynchronously (aiohttp), so a replay covers both transports. Recording fails if LiteLLM's outcome differs from the
scenario's expectation, so a cassette never captures a surprise. ``tests/integration/test_cassettes.py`` imports
this file for the scenarios and the VCR settings, and replays every cassette with record mode ``none``.

The emulator's port changes per run: requests are stored as ``http://emulator.invalid/...`` (the same rewrite is
applied to live requests when matching), so a replay works against any ``api_base``. API keys are dropped from
headers and query strings.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from langchain_ailib_resilience.testing.emulator import Behaviour, Fault, ProviderEmulator, Success  # noqa: E402

CASSETTES = ROOT / "cassettes"
MODEL = "emu-model"
MESSAGES = [{"role": "user", "content": "Say hello"}]
SECRET_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")
STORED_ORIGIN = "http://emulator.invalid"
REPLAY_BASE_URL = "http://127.0.0.1:9"  # nothing listens there: a replayed answer can only come from a cassette
_LOCAL_ORIGIN = re.compile(r"^https?://(?:127\.0\.0\.1|localhost)(?::\d+)?")

Provider = Literal["openai", "anthropic", "gemini"]


@dataclass(frozen=True)
class Outcome:
    """What a caller saw: ``ok`` with the text, or the exception class with its status and Retry-After header."""

    kind: str
    detail: str | int | None = None
    retry_after: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    provider: Provider
    behaviour: Behaviour
    expected: Outcome
    code: str | None = None  # the StandardErrorCode the package's classifier must give an error outcome
    stream: bool = False
    client: Literal["litellm", "langchain"] = "litellm"


def _scenarios() -> list[Scenario]:
    overload_status = {"openai": ("ServiceUnavailableError", 503), "anthropic": ("InternalServerError", 500)}
    quota = {"openai": ("RateLimitError", 429), "anthropic": ("BadRequestError", 400)}
    scenarios: list[Scenario] = []
    for provider in ("openai", "anthropic", "gemini"):
        text = f"Recorded {provider} reply."
        rate_retry_after = None if provider == "gemini" else "0.5"  # Gemini says it in the body (RetryInfo)
        overload = overload_status.get(provider, ("InternalServerError", 500))
        spent = quota.get(provider, ("RateLimitError", 429))
        scenarios += [
            Scenario(f"{provider}_success", provider, Success(text), Outcome("ok", text)),
            Scenario(f"{provider}_stream", provider, Success(text), Outcome("ok", text), stream=True),
            Scenario(
                f"{provider}_rate_limit",
                provider,
                Fault.rate_limit(0.5),
                Outcome("RateLimitError", 429, rate_retry_after),
                "E2001",
            ),
            Scenario(f"{provider}_overloaded", provider, Fault.overloaded(), Outcome(*overload), "E3002"),
            Scenario(f"{provider}_quota", provider, Fault.quota(), Outcome(*spent), "E2002"),
        ]
    scenarios += [
        Scenario(
            "langchain_openai_success",
            "openai",
            Success("Recorded ChatLiteLLM reply."),
            Outcome("ok", "Recorded ChatLiteLLM reply."),
            client="langchain",
        ),
        Scenario(
            "langchain_anthropic_rate_limit",
            "anthropic",
            Fault.rate_limit(0.5),
            Outcome("RateLimitError", 429, "0.5"),
            "E2001",
            client="langchain",
        ),
    ]
    return scenarios


SCENARIOS: list[Scenario] = _scenarios()


def _normalise_request(request: Any) -> Any:
    request.uri = _LOCAL_ORIGIN.sub(STORED_ORIGIN, request.uri)
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Drop headers that change on every recording and mean nothing to a replay."""
    headers = response.get("headers", {})
    for name in [name for name in headers if name.lower() in ("date", "server")]:
        del headers[name]
    return response


def make_vcr(record_mode: str) -> Any:
    """The VCR used both to record and to replay (the request rewrite must be the same for both)."""
    import vcr  # type: ignore[import-untyped]

    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode=record_mode,
        filter_headers=[*SECRET_HEADERS, "host"],  # the host header carries the emulator's random port
        before_record_response=_scrub_response,
        filter_query_parameters=["key"],
        before_record_request=_normalise_request,
        match_on=("method", "scheme", "host", "port", "path", "query"),
        decode_compressed_response=True,
    )


def api_base(provider: Provider, base_url: str) -> str:
    return {"openai": f"{base_url}/v1", "anthropic": base_url, "gemini": f"{base_url}/v1beta"}[provider]


def _outcome(exc: BaseException) -> Outcome:
    headers = getattr(exc, "litellm_response_headers", None)
    retry_after = headers.get("retry-after") if headers is not None else None
    return Outcome(type(exc).__name__, getattr(exc, "status_code", None), retry_after)


def _text(content: Any) -> str:
    return content if isinstance(content, str) else str(content or "")


def run_scenario(scenario: Scenario, base_url: str) -> tuple[list[Outcome], list[BaseException]]:
    """Call the scenario's client twice (sync, then async) against ``base_url``; return outcomes and errors."""
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []
    for run in (_run_sync, _run_async):
        try:
            outcomes.append(Outcome("ok", run(scenario, base_url)))
        except Exception as exc:
            outcomes.append(_outcome(exc))
            errors.append(exc)
    return outcomes, errors


def _litellm_kwargs(scenario: Scenario, base_url: str) -> dict[str, Any]:
    return {
        "model": f"{scenario.provider}/{MODEL}",
        "api_base": api_base(scenario.provider, base_url),
        "api_key": "test-key",
        "max_retries": 0,
        "num_retries": 0,
        "timeout": 10,
        "messages": MESSAGES,
    }


def _chat_model(scenario: Scenario, base_url: str) -> Any:
    from langchain_litellm import ChatLiteLLM

    return ChatLiteLLM(
        model=f"{scenario.provider}/{MODEL}",
        api_base=api_base(scenario.provider, base_url),
        api_key="test-key",
        max_retries=1,
        model_kwargs={"max_retries": 0, "num_retries": 0},
    )


def _run_sync(scenario: Scenario, base_url: str) -> str:
    if scenario.client == "langchain":
        return _text(_chat_model(scenario, base_url).invoke("Say hello").content)
    import litellm

    kwargs = _litellm_kwargs(scenario, base_url)
    if scenario.stream:
        return "".join(c.choices[0].delta.content or "" for c in litellm.completion(stream=True, **kwargs))
    return _text(litellm.completion(**kwargs).choices[0].message.content)


def _run_async(scenario: Scenario, base_url: str) -> str:
    async def call() -> str:
        if scenario.client == "langchain":
            return _text((await _chat_model(scenario, base_url).ainvoke("Say hello")).content)
        import litellm

        kwargs = _litellm_kwargs(scenario, base_url)
        if scenario.stream:
            stream = await litellm.acompletion(stream=True, **kwargs)
            return "".join([c.choices[0].delta.content or "" async for c in stream])
        return _text((await litellm.acompletion(**kwargs)).choices[0].message.content)

    return asyncio.run(call())


def record(names: list[str] | None = None) -> int:
    """Record the named scenarios (all by default); returns the number that did not behave as expected."""
    chosen = [s for s in SCENARIOS if not names or s.name in names]
    unknown = set(names or ()) - {s.name for s in SCENARIOS}
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return len(unknown)
    CASSETTES.mkdir(exist_ok=True)
    failures = 0
    recorder = make_vcr("all")
    with ProviderEmulator() as emulator:
        for scenario in chosen:
            path = CASSETTES / f"{scenario.name}.yaml"
            path.unlink(missing_ok=True)
            emulator.reset()
            emulator.script(MODEL, [scenario.behaviour, scenario.behaviour])
            with recorder.use_cassette(path.name):
                outcomes, _ = run_scenario(scenario, emulator.base_url)
            ok = outcomes == [scenario.expected] * 2 and emulator.count() == 2
            failures += not ok
            status = "ok" if ok else f"UNEXPECTED {outcomes} ({emulator.count()} requests)"
            print(f"{scenario.name:34} {status}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help="scenarios to record (default: all)")
    args = parser.parse_args(argv)
    return 1 if record(args.names) else 0


if __name__ == "__main__":
    sys.exit(main())
