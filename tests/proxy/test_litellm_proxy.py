"""A real ``litellm --config`` proxy process, ResilienceCallback registered as the proxy documents, in front of
the provider emulator, driven with the OpenAI client.

One proxy for the whole module (it takes seconds to boot); each scenario uses its own model group, so their
deployments' breakers and limiters do not meet. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from langchain_ailib_resilience.testing import Fault, ProviderEmulator, Success

FAILURE_THRESHOLD = 3
BURST = 8
RPS = 5
MAX_INFLIGHT = 2

CALLBACKS = f"""
from langchain_ailib_resilience import ResilienceCallback

proxy_handler_instance = ResilienceCallback(
    {{
        "circuit_breaker": {{
            "failure_threshold": {FAILURE_THRESHOLD},
            "cooldown_seconds": 120,
            "max_cooldown_seconds": 120,
            "quota_cooldown_seconds": 3600,
        }},
        "rate_limiter": {{"requests_per_second": {RPS}, "burst_size": {BURST}, "max_wait": 0}},
        "backpressure": {{"max_inflight": {MAX_INFLIGHT}, "max_wait": 0}},
    }}
)
"""

GROUPS = ("outage", "healthy", "storm", "quota", "backup", "slow", "burst", "stream", "stream429", "streamdrop")
LITELLM = Path(sys.executable).with_name("litellm")
pytestmark = pytest.mark.skipif(not LITELLM.exists(), reason="needs the litellm proxy CLI (litellm[proxy])")


@dataclass
class Proxy:
    url: str
    key: str
    log: Path
    emulator: ProviderEmulator

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0, timeout=30)

    def aclient(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0, timeout=30)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    text: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(emulator: ProviderEmulator, key: str) -> str:
    models = "\n".join(
        f"  - model_name: {group}\n"
        f"    litellm_params: {{model: openai/{group}-x, api_base: '{emulator.openai_base}', api_key: sk-emulator}}"
        for group in GROUPS
    )
    models += "".join(  # one model group of two deployments, one of them dead
        f"\n  - model_name: pair\n"
        f"    litellm_params: {{model: openai/{name}, api_base: '{emulator.openai_base}', api_key: sk-emulator}}"
        for name in ("pair-dead-x", "pair-live-x")
    )
    return (
        f"model_list:\n{models}\n"
        "litellm_settings:\n"
        '  callbacks: ["custom_callbacks.proxy_handler_instance"]\n'
        "router_settings:\n"
        "  num_retries: 1\n"  # the proxy's retries pass our gate too: they must not multiply requests
        "  disable_cooldowns: true\n"  # our breaker keeps dead deployments out, with half-open probes
        "  fallbacks: [{quota: [backup]}]\n"
        "general_settings:\n"
        f"  master_key: {key}\n"
    )


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    workdir = tmp_path_factory.mktemp("litellm-proxy")
    emulator = ProviderEmulator().start()
    key = "sk-" + secrets.token_urlsafe(32)  # the proxy refuses weak master keys; a fresh one per run
    (workdir / "config.yaml").write_text(_config(emulator, key))
    (workdir / "custom_callbacks.py").write_text(CALLBACKS)
    port = _free_port()
    log = workdir / "proxy.log"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(LITELLM), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"the proxy exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the proxy did not come up in 90 s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        emulator.set_default("outage-x", Fault.server_error(500))
        emulator.set_default("storm-x", Fault.rate_limit(0.2))
        emulator.set_default("quota-x", Fault.quota())
        emulator.set_default("slow-x", Success(latency=2.0))
        emulator.set_default("pair-dead-x", Fault.server_error(500))
        emulator.set_default("stream429-x", Fault.rate_limit(0.2))
        emulator.set_default("streamdrop-x", Fault.stream_drop(after_chunks=2))
        yield Proxy(url=url, key=key, log=log, emulator=emulator)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        emulator.stop()
        if os.environ.get("KEEP_PROXY_LOG"):
            shutil.copy(log, os.environ["KEEP_PROXY_LOG"])


def _ask(proxy: Proxy, model: str) -> Answer:
    try:
        raw = proxy.client().chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    except openai.APIStatusError as error:
        return Answer(error.status_code, error.response.headers, error.response.text)
    return Answer(raw.status_code, raw.headers, raw.text)


async def _aask(client: openai.AsyncOpenAI, model: str) -> Answer:
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    except openai.APIStatusError as error:
        return Answer(error.status_code, error.response.headers, error.response.text)
    return Answer(raw.status_code, raw.headers, raw.text)


def _local(answer: Answer, status: int, code: str) -> None:
    """Answered by our gate: the status for our code, a Retry-After of whole seconds >= 1."""
    assert answer.status == status, answer.text
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.headers["x-resilience-error-code"] == code
    assert "no request was sent" in answer.text


def test_outage_requests_to_the_dead_deployment_are_bounded_by_the_breaker(proxy: Proxy) -> None:
    answers = [_ask(proxy, "outage") for _ in range(8)]
    # Each client request is an attempt plus one Router retry, all through the gate: the breaker opens after
    # FAILURE_THRESHOLD failed attempts and no further request reaches the provider.
    assert proxy.emulator.count("outage-x") == FAILURE_THRESHOLD
    assert answers[0].status == 500  # the provider's own 500, passed on
    for answer in answers[2:]:
        _local(answer, 503, "E3002")
        assert answer.headers["x-resilience-circuit-state"] == "open"
        assert int(answer.headers["x-resilience-cooldown-remaining"]) > 60
    assert "looks like a bug" not in proxy.log_text()


def test_open_deployment_is_skipped_while_its_sibling_is_healthy(proxy: Proxy) -> None:
    for _ in range(20):  # until the dead deployment's breaker has seen its threshold
        if proxy.emulator.count("pair-dead-x") >= FAILURE_THRESHOLD:
            break
        _ask(proxy, "pair")  # before it opens, a failure may reach the client (the Router retries once)
    assert proxy.emulator.count("pair-dead-x") == FAILURE_THRESHOLD
    served = proxy.emulator.count("pair-live-x")
    answers = [_ask(proxy, "pair") for _ in range(5)]
    # Served by the live sibling, or (when the loop above already spent most of its 5/s burst-8 bucket: a
    # fast machine) refused by its own local rate limit; never a 503, never the dead deployment.
    served_now = [answer for answer in answers if answer.status == 200]
    for answer in answers:
        if answer.status != 200:
            _local(answer, 429, "E2001")
    assert served_now, [answer.text for answer in answers]
    assert proxy.emulator.count("pair-dead-x") == FAILURE_THRESHOLD  # not picked again, not even refused
    assert proxy.emulator.count("pair-live-x") == served + len(served_now)
    assert all(answer.headers["x-resilience-circuit-state"] == "closed" for answer in served_now)


def test_healthy_deployment_is_unaffected_and_reports_its_state(proxy: Proxy) -> None:
    answers = [_ask(proxy, "healthy") for _ in range(3)]
    assert [answer.status for answer in answers] == [200, 200, 200]
    assert proxy.emulator.count("healthy-x") == 3
    headers = answers[-1].headers
    assert headers["x-resilience-circuit-state"] == "closed"
    assert 0 <= int(headers["x-resilience-rate-remaining"]) <= BURST
    assert headers["x-resilience-inflight-remaining"] == str(MAX_INFLIGHT)
    assert "retry-after" not in headers
    values = " ".join(value for name, value in headers.items() if name.startswith("x-resilience"))
    assert proxy.key not in values
    assert "sk-emulator" not in values
    assert "127.0.0.1" not in values


def test_provider_429_storm_opens_the_circuit_then_is_answered_locally(proxy: Proxy) -> None:
    answers = [_ask(proxy, "storm") for _ in range(6)]
    assert proxy.emulator.count("storm-x") == FAILURE_THRESHOLD
    assert answers[0].status == 429  # the provider's 429, passed on with its Retry-After
    for answer in answers[2:]:
        _local(answer, 503, "E3002")


def test_local_rate_limit_answers_429_without_asking_the_provider(proxy: Proxy) -> None:
    started = time.monotonic()
    answers = [_ask(proxy, "burst") for _ in range(3 * BURST)]
    elapsed = time.monotonic() - started
    served = [answer for answer in answers if answer.status == 200]
    refused = [answer for answer in answers if answer.status != 200]
    assert refused, "the local rate limit never refused"
    for answer in refused:
        _local(answer, 429, "E2001")
    # Only admitted requests reach the provider, and no more than the bucket allows.
    assert proxy.emulator.count("burst-x") == len(served)
    assert len(served) <= BURST + RPS * elapsed + 1


async def test_in_flight_limit_under_concurrency(proxy: Proxy) -> None:
    client = proxy.aclient()
    try:
        answers = await asyncio.wait_for(asyncio.gather(*(_aask(client, "slow") for _ in range(6))), timeout=30)
    finally:
        await client.close()
    statuses = sorted(answer.status for answer in answers)
    assert statuses == [200] * MAX_INFLIGHT + [503] * (6 - MAX_INFLIGHT)
    for answer in answers:
        if answer.status == 503:
            _local(answer, 503, "E3002")
    assert proxy.emulator.peak_in_flight("slow-x") <= MAX_INFLIGHT
    assert proxy.emulator.count("slow-x") == MAX_INFLIGHT


def test_quota_falls_back_and_keeps_the_spent_deployment_out(proxy: Proxy) -> None:
    answers = [_ask(proxy, "quota") for _ in range(4)]
    assert [answer.status for answer in answers] == [200] * 4, answers[0].text
    assert all(answer.headers.get("x-litellm-model-group") == "backup" for answer in answers)
    # One request found the quota spent (E2002: not retried); the quota cooldown keeps the deployment out.
    assert proxy.emulator.count("quota-x") == 1
    assert proxy.emulator.count("backup-x") == 4


@dataclass
class Streamed:
    status: int
    headers: httpx.Headers
    text: str
    error: str | None = None


def _stream(proxy: Proxy, model: str) -> Streamed:
    """Stream a chat completion through the proxy with the OpenAI client, reading every chunk."""
    try:
        raw = proxy.client().chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    except openai.APIStatusError as error:
        return Streamed(error.status_code, error.response.headers, error.response.text)
    pieces: list[str] = []
    try:
        for chunk in raw.parse():
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    except (openai.APIError, httpx.HTTPError) as error:
        return Streamed(raw.status_code, raw.headers, "".join(pieces), error=type(error).__name__)
    return Streamed(raw.status_code, raw.headers, "".join(pieces))


def _inflight_remaining(proxy: Proxy, model: str) -> str:
    """The in-flight headroom the proxy reports for ``model`` on its next (refused or answered) call."""
    return _ask(proxy, model).headers["x-resilience-inflight-remaining"]


def test_stream_healthy_carries_state_headers_and_releases_its_permit(proxy: Proxy) -> None:
    streams = [_stream(proxy, "stream") for _ in range(3)]
    for streamed in streams:
        assert streamed.status == 200 and streamed.error is None
        assert streamed.text
        assert streamed.headers["x-resilience-circuit-state"] == "closed"
    assert proxy.emulator.count("stream-x") == 3
    assert _inflight_remaining(proxy, "stream") == str(MAX_INFLIGHT)  # every stream's permit went back


def test_stream_429_before_the_first_chunk_counts_once_per_attempt(proxy: Proxy) -> None:
    streams = [_stream(proxy, "stream429") for _ in range(5)]
    assert streams[0].status == 429  # the provider's 429, before any chunk
    # Each attempt (one plus one Router retry per request) counted once: the breaker opens at the threshold.
    assert proxy.emulator.count("stream429-x") == FAILURE_THRESHOLD
    for streamed in streams[2:]:
        assert streamed.status == 503
        assert int(streamed.headers["retry-after"]) >= 1
        assert streamed.headers["x-resilience-error-code"] == "E3002"
    assert _inflight_remaining(proxy, "stream429") == str(MAX_INFLIGHT)


def test_stream_dropped_mid_way_settles_once_and_releases_its_permit(proxy: Proxy) -> None:
    first = _stream(proxy, "streamdrop")
    assert first.status == 200  # the stream had started: the proxy cannot change its status any more
    assert first.error is not None or proxy.emulator.count("streamdrop-x") == 1
    for _ in range(FAILURE_THRESHOLD - 1):
        _stream(proxy, "streamdrop")
    # Each broken stream counted once: the breaker opened exactly at the threshold, not before.
    assert proxy.emulator.count("streamdrop-x") == FAILURE_THRESHOLD
    refused = _stream(proxy, "streamdrop")
    assert refused.status == 503
    assert refused.headers["x-resilience-error-code"] == "E3002"
    assert proxy.emulator.count("streamdrop-x") == FAILURE_THRESHOLD
    assert _inflight_remaining(proxy, "streamdrop") == str(MAX_INFLIGHT)


def test_no_bug_report_in_the_proxy_log(proxy: Proxy) -> None:
    text = proxy.log_text()
    assert "looks like a bug" not in text
    assert proxy.key not in text
