"""A scripted local LLM provider: OpenAI, Anthropic and Gemini wire formats on 127.0.0.1.

Why a real HTTP server rather than mocks: LiteLLM's ``mock_response`` skips the HTTP layer, so it cannot show
how a 429's headers, an Anthropic 529 or a stream cut after two chunks reach the caller. The emulator answers
with each provider's own status codes, headers and bodies, so the real SDK transports (httpx, aiohttp), LiteLLM's
exception mapping and this package's classifier all run as they would against the provider.

It uses only the standard library (``http.server`` in a background thread), so the package gains no dependency.

Each request is answered by the first of: the model's limits (``rate_limit``: requests and tokens per
minute; over them, a 429), the model's script (a queue, consumed one behaviour per request), the random fault
rate, the model's default, the emulator-wide default, and finally ``Success()``. Models are keyed by the name
the provider sees; a LiteLLM prefix (``openai/``, ``anthropic/``, ``gemini/``, ``azure/``) given to the
scripting methods is dropped.

Routes: ``POST /v1/chat/completions`` (OpenAI; ``stream: true`` for SSE), ``POST
/openai/deployments/{model}/chat/completions`` (Azure OpenAI), ``POST /v1/messages`` (Anthropic),
``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse`` (Gemini), and
``GET /health``.

A model with limits states them on every answer, in the headers of the route's provider (OpenAI
``x-ratelimit-*``, Anthropic ``anthropic-ratelimit-*``, Azure ``x-ratelimit-remaining-*``) or a chosen form,
so clients that learn limits from headers can be tested offline.
"""

from ._behaviours import DEFAULT_TEXT, Behaviour, Fault, FaultKind, RequestRecord, Source, Success, parse_behaviour
from ._emulator import ProviderEmulator
from ._scheduling import DEFAULT_OUTPUT_TOKENS, HeaderForm
from ._wire import ProviderFormat, ToolCall

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_TEXT",
    "Behaviour",
    "Fault",
    "FaultKind",
    "HeaderForm",
    "ProviderEmulator",
    "ProviderFormat",
    "RequestRecord",
    "Source",
    "Success",
    "ToolCall",
    "parse_behaviour",
]
