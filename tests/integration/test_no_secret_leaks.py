"""No secret reaches anything we print or publish, over generated secrets and every entry point's error path.

Secrets are placed where users put them: ``api_key``, an ``Authorization`` header, a base URL's userinfo and its
``key``/``api-key``/``token`` query parameters. The server on 127.0.0.1 is hostile: its 500 answer echoes the
request line (query string included) and the credential headers back in the error message, the way verbose
gateways do. Then nothing we produce may contain a secret: ``str``/``repr`` of the error, its formatted
traceback (cause chain included), ``attempts[].target``, ``CircuitOpenError.target``, every event
(``as_dict`` and ``repr``), the registry's and signals' target names, and every log record of ours (and of
the app logging our errors with ``logger.exception``).

Spans and metrics: the OpenTelemetry instrumentation had not landed when this was written; add its exporter's
output to ``Observed`` when it does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import litellm
import openai
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from langchain_core.messages import HumanMessage

from langchain_ailib_resilience import (
    CircuitBreakerConfig,
    CircuitOpenError,
    FallbackChain,
    ResilienceCallback,
    ResilienceError,
    ResilienceEvent,
    ResilientConfig,
    ResilientExecutor,
    RetryConfig,
    classify_error,
    resilient_acompletion,
)
from langchain_ailib_resilience.integrations.langchain import ResilientChatModel
from langchain_ailib_resilience.registry import Registry
from langchain_ailib_resilience.targets import target_key

_CREDENTIAL_HEADERS = ("authorization", "api-key", "x-api-key", "x-goog-api-key")


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        echoed = ", ".join(f"{name}: {self.headers[name]}" for name in _CREDENTIAL_HEADERS if self.headers[name])
        message = f"internal error handling POST {self.path} with {echoed}"
        body = json.dumps({"error": {"message": message, "type": "server_error", "code": None}}).encode()
        self.send_response(500)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


# Secrets in the shapes users have: provider key shapes and opaque gateway tokens.
# With a digit: Hypothesis also draws string constants from loaded modules, and a "secret" that is an identifier
# such as ``InternalServerError`` legitimately appears in messages.
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_BODY = st.text(alphabet=_ALNUM, min_size=16, max_size=28).filter(lambda s: any(c.isdigit() for c in s))
_SHAPED = st.tuples(st.sampled_from(["sk-", "sk-proj-", "sk-ant-api03-", "hf_", "gsk_", "xai-"]), _BODY).map("".join)
SECRET = st.one_of(_SHAPED, _BODY)


@dataclass
class Secrets:
    api_key: str
    header: str
    user: str
    password: str
    query: dict[str, str]

    def all(self) -> list[str]:
        return [self.api_key, self.header, self.password, *self.query.values()]

    def base(self, port: int) -> str:
        query = "&".join(f"{name}={value}" for name, value in self.query.items())
        return f"http://{self.user}:{self.password}@127.0.0.1:{port}/v1?{query}"


SECRETS = st.builds(
    Secrets,
    api_key=SECRET,
    header=SECRET,
    user=st.sampled_from(["user", "alice", "svc"]),
    password=SECRET,
    query=st.fixed_dictionaries(
        {},
        optional={"key": SECRET, "api-key": SECRET, "token": SECRET, "api_key": SECRET, "access_token": SECRET},
    ),
)


@dataclass
class Observed:
    texts: list[str] = field(default_factory=list)
    events: list[ResilienceEvent] = field(default_factory=list)

    def error(self, error: BaseException) -> None:
        self.texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        if isinstance(error, ResilienceError):
            self.texts += [record.target for record in error.attempts] + [str(a) for a in error.attempts]
        if isinstance(error, CircuitOpenError) and error.target:
            self.texts.append(error.target)

    def listener(self, event: ResilienceEvent) -> None:
        self.events.append(event)

    def finish(self, registry: Registry, records: list[logging.LogRecord]) -> str:
        for event in self.events:
            self.texts += [repr(event), json.dumps(event.as_dict(), default=str), event.target]
        self.texts += registry.targets()
        for name in registry.targets():
            self.texts.append(repr(registry.signals(name)))
        for record in records:
            self.texts.append(record.getMessage())
            if record.exc_info and record.exc_info[1] is not None:
                self.texts.append("".join(traceback.format_exception(record.exc_info[1])))
        return "\n".join(self.texts)


def _config(threshold: int = 2) -> ResilientConfig:
    return ResilientConfig(
        retry=RetryConfig(max_retries=1, initial_delay=0.0, max_delay=0.001, jitter="none", budget=None),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=threshold, cooldown_seconds=60),
    )


class _Logs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Ours, and the app's that logs our errors. LiteLLM's own DEBUG log prints extra_headers verbatim
        # ("POST Request Sent from LiteLLM: curl ..."): not ours to fix, so not asserted on.
        if record.name.startswith(("langchain_ailib_resilience", "app")):
            self.records.append(record)


@pytest.fixture
def logs() -> Iterator[_Logs]:
    handler = _Logs()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _assert_clean(secrets: Secrets, text: str) -> None:
    for secret in secrets.all():
        where = text.find(secret)
        assert where == -1, f"{secret!r} leaked: ...{text[max(0, where - 300) : where + 100]}..."


def _log_the_error(error: BaseException) -> None:
    try:
        raise error
    except BaseException:
        logging.getLogger("app").exception("call failed")  # what users do with our errors


PROPERTY = settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)


@PROPERTY
@given(secrets=SECRETS)
def test_resilient_chat_model(secrets: Secrets, echo_port: int, logs: _Logs) -> None:
    logs.records.clear()
    registry, seen = Registry(), Observed()
    model = ResilientChatModel(
        model="openai/m",
        api_key=secrets.api_key,
        litellm_kwargs={
            "api_base": secrets.base(echo_port),
            "extra_headers": {"Authorization": secrets.header, "api-key": secrets.header},
        },
        config=_config(),
        registry=registry,
    )
    for _ in range(2):  # the second call meets the open circuit
        with pytest.raises(ResilienceError) as info:
            model.invoke([HumanMessage("hi")])
        seen.error(info.value)
        _log_the_error(info.value)
    assert isinstance(info.value, CircuitOpenError)
    _assert_clean(secrets, seen.finish(registry, logs.records))


@PROPERTY
@given(secrets=SECRETS)
def test_resilient_acompletion(secrets: Secrets, echo_port: int, logs: _Logs) -> None:
    logs.records.clear()
    registry, seen = Registry(), Observed()

    async def call() -> None:
        for _ in range(2):
            with pytest.raises(ResilienceError) as info:
                await resilient_acompletion(
                    model="openai/m",
                    messages=[{"role": "user", "content": "hi"}],
                    api_base=secrets.base(echo_port),
                    api_key=secrets.api_key,
                    extra_headers={"Authorization": secrets.header, "api-key": secrets.header},
                    config=_config(),
                    registry=registry,
                    listeners=[seen.listener],
                )
            seen.error(info.value)
            _log_the_error(info.value)
        assert isinstance(info.value, CircuitOpenError)

    asyncio.run(call())
    _assert_clean(secrets, seen.finish(registry, logs.records))


def _sdk_call(secrets: Secrets, port: int) -> Any:
    """A raw OpenAI SDK call to the hostile server (its own retries off): what users hand the executor."""

    def call(*_: Any) -> Any:
        client = openai.OpenAI(
            api_key=secrets.api_key,
            base_url=secrets.base(port),
            max_retries=0,
            default_headers={"Authorization": secrets.header, "api-key": secrets.header},
        )
        with client:
            return client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    return call


@PROPERTY
@given(secrets=SECRETS)
def test_executor_and_fallback_chain(secrets: Secrets, echo_port: int, logs: _Logs) -> None:
    logs.records.clear()
    registry, seen = Registry(), Observed()
    name = target_key("openai/m", api_base=secrets.base(echo_port))
    executor = ResilientExecutor(_config(threshold=4), registry=registry, listeners=[seen.listener])
    with pytest.raises(ResilienceError) as info:
        executor.execute_sync(_sdk_call(secrets, echo_port), target=name)
    seen.error(info.value)
    _log_the_error(info.value)
    chain = FallbackChain([(name, "primary"), ("backup", "backup")], executor=executor)
    for _ in range(2):
        with pytest.raises(ResilienceError) as info:
            chain.run(_sdk_call(secrets, echo_port))
        seen.error(info.value)
        _log_the_error(info.value)
    _assert_clean(secrets, seen.finish(registry, logs.records))


@PROPERTY
@given(secrets=SECRETS)
def test_litellm_callback(secrets: Secrets, echo_port: int, logs: _Logs) -> None:
    logs.records.clear()
    registry, seen = Registry(), Observed()
    callback = ResilienceCallback(_config(threshold=1), registry=registry)

    async def call() -> None:
        for _ in range(2):  # the second is refused by the open circuit, before any request
            with pytest.raises(Exception) as info:
                await litellm.acompletion(
                    model="openai/m",
                    messages=[{"role": "user", "content": "hi"}],
                    api_base=secrets.base(echo_port),
                    api_key=secrets.api_key,
                    extra_headers={"Authorization": secrets.header, "api-key": secrets.header},
                    num_retries=0,
                )
            error = info.value if isinstance(info.value, ResilienceError) else classify_error(info.value)
            seen.error(error)
            _log_the_error(error)
        assert isinstance(info.value, CircuitOpenError)

    callback.register()
    try:
        asyncio.run(call())
    finally:
        callback.unregister()
    _assert_clean(secrets, seen.finish(registry, logs.records))


def test_the_echo_server_really_echoes_the_secrets(echo_port: int) -> None:
    """Guards the property tests against passing vacuously: the raw answer holds every secret we sent."""
    secrets = Secrets(
        "sk-aaaaaaaaaaaaaaaaaaaa", "tok-bbbbbbbbbbbbbbbb", "u", "pw-cccccccccccccccc", {"key": "dddddddddd"}
    )
    with pytest.raises(openai.InternalServerError) as info:
        _sdk_call(secrets, echo_port)()
    raw = str(info.value)
    assert secrets.header in raw and secrets.query["key"] in raw
    response = httpx.post(f"http://127.0.0.1:{echo_port}/v1?token=eeeeeeeeee", headers={"api-key": "ffffffffff"})
    assert "eeeeeeeeee" in response.text and "ffffffffff" in response.text
