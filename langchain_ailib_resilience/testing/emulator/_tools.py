"""What a successful answer says when the request offers tools or asks for structured output.

The emulator answers the way the real APIs do, so tool calling and structured output are tested end to end:

- A ``Success`` whose text the script chose is sent as written (tools are still called when the request forces
  one); what follows is for the default ``Success()``.
- **Tools** (OpenAI ``tools``/``tool_choice``, Anthropic ``tools``/``tool_choice``): a ``Success`` with
  ``tool_calls`` calls exactly those. Otherwise a tool is called when the request forces one (``"required"``,
  a named function, Anthropic ``any``/``tool``), or when tools are offered, the choice is automatic and the
  conversation does not end with a tool result (so an agent loop gets a tool call, then a text answer). The
  arguments are generated from the tool's JSON schema: numbers found in the last user message fill numeric
  fields in order, text it quotes (``'...'`` or ``"..."``) fills string fields in order, other fields get a plain
  example value.
- **Structured output** (OpenAI ``response_format``, Anthropic ``output_config.format``): ``json_schema`` gets
  a JSON object valid for the schema (the scripted text itself when it is already JSON); ``json_object`` gets
  the scripted text when it is JSON, else an object with the keys the last user message quotes (a prompt asking
  for "a JSON with 'setup' and 'punchline' keys"), each holding the text, or ``{"answer": text}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._wire import ProviderFormat, ToolCall

__all__ = ["ToolCall", "plan_success"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# Quoted text: 'x' or "x", the opening quote not inside a word (so "it's" and "don't" quote nothing).
_QUOTED = re.compile(r"(?<!\w)(?:'([^'\n]+)'|\"([^\"\n]+)\")(?!\w)")
_KEY = re.compile(r"[A-Za-z_]\w*")


@dataclass(slots=True)
class Prompt:
    """What the last user message offers to fill a schema with, consumed in order."""

    numbers: list[float]
    strings: list[str]
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Planned:
    text: str
    tool_calls: tuple[ToolCall, ...]


def plan_success(
    provider: ProviderFormat,
    body: Mapping[str, Any],
    text: str,
    tool_calls: Sequence[ToolCall] | None,
    request_id: str,
    *,
    scripted_text: bool = False,
) -> Planned:
    """The text and tool calls of a success for ``body`` (``tool_calls`` given: exactly those).

    ``scripted_text``: the script chose the words, so they are sent as they are (a tool is still called when the
    request forces one, as the real APIs always do).
    """
    if tool_calls is not None:
        return Planned("" if tool_calls else text, _with_ids(provider, tool_calls, request_id))
    if provider in ("openai", "anthropic"):
        chosen = _chosen_tool(provider, body)
        if chosen is not None and scripted_text and not _forced(provider, body):
            chosen = None
        if chosen is not None:
            name, schema = chosen
            arguments = example_for(schema, _prompt(provider, body), _defs(schema))
            return Planned("", _with_ids(provider, [ToolCall(name, arguments)], request_id))
    if scripted_text:
        return Planned(text, ())
    if provider == "openai":
        text = _structured_text(body.get("response_format"), text, _prompt(provider, body))
    elif provider == "anthropic":
        config = body.get("output_config") or {}
        output_format = config.get("format") if isinstance(config, Mapping) else None
        output_format = output_format or body.get("output_format")  # the structured-outputs beta's spelling
        if isinstance(output_format, Mapping) and output_format.get("type") == "json_schema":
            wrapped = {"type": "json_schema", "json_schema": {"schema": output_format.get("schema") or {}}}
            text = _structured_text(wrapped, text, _prompt(provider, body))
    return Planned(text, ())


def _with_ids(provider: ProviderFormat, calls: Sequence[ToolCall], request_id: str) -> tuple[ToolCall, ...]:
    prefix = "toolu_" if provider == "anthropic" else "call_"
    return tuple(
        call if call.id else ToolCall(call.name, dict(call.arguments), f"{prefix}{request_id}_{index}")
        for index, call in enumerate(calls)
    )


# --- tools ----------------------------------------------------------------------------------------------------


def _tools(provider: ProviderFormat, body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Tool name → its parameters' JSON schema, in the request's order."""
    found: dict[str, Mapping[str, Any]] = {}
    for tool in body.get("tools") or ():
        if not isinstance(tool, Mapping):
            continue
        if provider == "openai":
            function = tool.get("function")
            if tool.get("type") == "function" and isinstance(function, Mapping) and function.get("name"):
                found[str(function["name"])] = function.get("parameters") or {}
        elif tool.get("name") and "input_schema" in tool:  # Anthropic client tools (server tools have none)
            found[str(tool["name"])] = tool.get("input_schema") or {}
    return found


def _chosen_tool(provider: ProviderFormat, body: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    tools = _tools(provider, body)
    if not tools:
        return None
    choice = body.get("tool_choice")
    first = _next_tool(provider, body, tools)
    if provider == "openai":
        if choice == "none":
            return None
        if isinstance(choice, Mapping):
            name = (choice.get("function") or {}).get("name")
            return (name, tools[name]) if name in tools else first
        if choice == "required":
            return first
    else:
        kind = choice.get("type") if isinstance(choice, Mapping) else None
        if kind == "none":
            return None
        if kind == "tool":
            name = choice.get("name") if isinstance(choice, Mapping) else None
            return (name, tools[name]) if name in tools else first
        if kind == "any":
            return first
    return None if _ends_with_tool_result(provider, body) else first


def _forced(provider: ProviderFormat, body: Mapping[str, Any]) -> bool:
    choice = body.get("tool_choice")
    if provider == "openai":
        return choice == "required" or isinstance(choice, Mapping)
    return isinstance(choice, Mapping) and choice.get("type") in ("any", "tool")


def _next_tool(
    provider: ProviderFormat, body: Mapping[str, Any], tools: dict[str, Mapping[str, Any]]
) -> tuple[str, Mapping[str, Any]]:
    """The first tool, or after a tool result the first one not called yet (else the last): a forced choice in an
    agent loop (``create_agent`` forces ``any`` beside its structured-output tool) then moves on, as a model
    would, instead of calling the same tool for ever."""
    items = list(tools.items())
    if not _ends_with_tool_result(provider, body):
        return items[0]
    called = _called_tools(provider, body)
    return next((item for item in items if item[0] not in called), items[-1])


def _called_tools(provider: ProviderFormat, body: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for message in body.get("messages") or ():
        if not isinstance(message, Mapping) or message.get("role") != "assistant":
            continue
        if provider == "openai":
            for call in message.get("tool_calls") or ():
                if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                    names.add(str(call["function"].get("name")))
        elif isinstance(message.get("content"), list):
            names.update(
                str(block.get("name"))
                for block in message["content"]
                if isinstance(block, Mapping) and block.get("type") == "tool_use"
            )
    return names


def _ends_with_tool_result(provider: ProviderFormat, body: Mapping[str, Any]) -> bool:
    messages = body.get("messages") or []
    if not messages or not isinstance(messages[-1], Mapping):
        return False
    last = messages[-1]
    if provider == "openai":
        return last.get("role") == "tool"
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(block, Mapping) and block.get("type") == "tool_result" for block in content
    )


def _last_user_text(provider: ProviderFormat, body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [str(block["text"]) for block in content if isinstance(block, Mapping) and "text" in block]
            if texts:  # an Anthropic user turn holding only tool results is not what the user asked
                return " ".join(texts)
    return ""


def _prompt(provider: ProviderFormat, body: Mapping[str, Any]) -> Prompt:
    text = _last_user_text(provider, body)
    strings = [single or double for single, double in _QUOTED.findall(text)]
    return Prompt(
        numbers=[float(n) for n in _NUMBER.findall(text)],
        strings=strings,
        keys=tuple(s for s in strings if _KEY.fullmatch(s)),
    )


# --- example values from a JSON schema ---------------------------------------------------------------------------


def _defs(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    defs = schema.get("$defs") or schema.get("definitions") or {}
    return defs if isinstance(defs, Mapping) else {}


def example_for(schema: Any, prompt: Prompt, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """A value valid for ``schema`` (the JSON Schema subset tool and output schemas use)."""
    if not isinstance(schema, Mapping) or depth > 8:
        return "example"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return example_for(defs.get(ref.rsplit("/", 1)[-1], {}), prompt, defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or () if isinstance(o, Mapping) and o.get("type") != "null"]
        if options:
            return example_for(options[0], prompt, defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {name: example_for(sub, prompt, defs, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [example_for(schema.get("items") or {}, prompt, defs, depth + 1)]
    if kind == "integer":
        return int(prompt.numbers.pop(0)) if prompt.numbers else 1
    if kind == "number":
        return prompt.numbers.pop(0) if prompt.numbers else 1.0
    if kind == "boolean":
        return True
    return prompt.strings.pop(0) if prompt.strings else "example"


def _structured_text(response_format: Any, text: str, prompt: Prompt) -> str:
    if not isinstance(response_format, Mapping):
        return text
    kind = response_format.get("type")
    if kind not in ("json_schema", "json_object"):
        return text
    try:
        json.loads(text)
    except ValueError:
        pass
    else:
        return text
    if kind == "json_object":
        return json.dumps(dict.fromkeys(prompt.keys or ("answer",), text))
    spec = response_format.get("json_schema") or {}
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    schema = schema if isinstance(schema, Mapping) else {}
    return json.dumps(example_for(schema, prompt, _defs(schema)))
