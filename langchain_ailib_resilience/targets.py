"""Target names: the key every entry point uses for a target's shared state.

A target is named by what identifies the endpoint, the same way from every input (a caller's kwargs, a
Router deployment's ``litellm_params``, the resolved values LiteLLM logs, a LangChain chat model's fields):
``provider/model``, then ``@api_base`` when the call names an endpoint of its own, then ``#deployment_id``
under the Router::

    openai/gpt-4o
    openai/gpt-4o@http://127.0.0.1:8000/v1
    openai/gpt-4o@https://my-gateway.example/v1#deployment-a

This module is core: it imports LiteLLM only to resolve a bare model name's provider, and only when installed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from urllib.parse import urlsplit

from .errors.redact import redact

# Public endpoints LiteLLM fills in when a call names none. Sync log events carry the resolved endpoint while
# the async hook sees only what the caller passed, so these hosts mean "no api_base" in a target name.
_DEFAULT_HOSTS = frozenset(
    {
        "api.openai.com",
        "api.anthropic.com",
        "generativelanguage.googleapis.com",
        "api.mistral.ai",
        "api.groq.com",
        "api.deepseek.com",
        "api.cohere.ai",
        "api.cohere.com",
        "api.together.xyz",
        "api.fireworks.ai",
        "openrouter.ai",
        "api.x.ai",
        "api.perplexity.ai",
    }
)


def normalise_api_base(api_base: object) -> str | None:
    """``api_base`` as ``scheme://host[:port]/path``; ``None`` for none, empty, or a provider's public endpoint.

    A target name reaches error messages, events and metric labels unredacted, so it never carries a URL's
    userinfo (``user:key@``), query string (``?api-key=...``) or fragment, and a known key shape in the path
    is redacted too.
    """
    if not isinstance(api_base, str):
        return None
    text = api_base.strip()
    try:
        parts = urlsplit(text) if "://" in text else None
    except ValueError:  # not a URL urllib can read (an unclosed IPv6 bracket)
        parts = None
    if parts is None:  # cut the same parts by hand
        text = _USERINFO.sub(r"\1", text.split("?", 1)[0].split("#", 1)[0])
        host = ""
    else:
        host = (parts.hostname or "").lower()
        text = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
    text = redact(text.rstrip("/"))
    if not text:
        return None
    return None if host in _DEFAULT_HOSTS else text


_USERINFO = re.compile(r"^([A-Za-z][\w+.-]*://)?[^/@]*@")


@functools.lru_cache(maxsize=1024)
def provider_and_model(model: str, custom_llm_provider: str | None = None) -> tuple[str | None, str]:
    """(provider, model name) as LiteLLM resolves ``model``; ``(None, model)`` when it cannot tell."""
    try:
        import litellm
    except ImportError:  # without LiteLLM, "provider/model" strings still name their provider
        head, sep, tail = model.partition("/")
        return (head, tail) if sep and head and tail else (custom_llm_provider, model)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # LiteLLM prints a provider list when it cannot tell
            name, provider, _, _ = litellm.get_llm_provider(model, custom_llm_provider=custom_llm_provider)
    except Exception:
        return None, model
    if not isinstance(provider, str) or not provider or not isinstance(name, str) or not name:
        return None, model
    return provider, name


def canonical_model(model: str, custom_llm_provider: str | None = None) -> str:
    """``provider/model`` (``"gpt-4o"`` → ``"openai/gpt-4o"``), or ``model`` as given when LiteLLM cannot tell."""
    provider, name = provider_and_model(model, custom_llm_provider)
    return f"{provider}/{name}" if provider else model


def target_key(
    model: str,
    *,
    api_base: object = None,
    deployment_id: object = None,
    custom_llm_provider: object = None,
) -> str:
    """The state key for a call: ``provider/model[@api_base][#deployment_id]``."""
    provider = custom_llm_provider if isinstance(custom_llm_provider, str) and custom_llm_provider else None
    return endpoint_key(canonical_model(model, provider), api_base=api_base, deployment_id=deployment_id)


def endpoint_key(model: str, *, api_base: object = None, deployment_id: object = None) -> str:
    """``model`` (already ``provider/model``) plus ``@api_base`` and ``#deployment_id``, with no LiteLLM lookup.

    For callers that know the provider already, such as a LangChain chat model naming its own endpoint.
    """
    key = model
    base = normalise_api_base(api_base)
    if base:
        key += f"@{base}"
    if isinstance(deployment_id, str) and deployment_id:
        key += f"#{deployment_id}"
    return key


_TARGET = re.compile(r"^(?P<model>.+?)(?:@(?P<base>[A-Za-z][\w+.-]*://[^#]*))?(?:#(?P<deployment>.+))?$")


def split_target(target: str) -> tuple[str, str | None, str | None]:
    """(model, api_base, deployment id) of a target name; a model may itself contain ``@`` (Vertex versions)."""
    match = _TARGET.match(target)
    if match is None:
        return target, None, None
    return match["model"], match["base"], match["deployment"]
