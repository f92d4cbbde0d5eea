"""Tools for testing apps built on this package: virtual time, and (with the emulator) scripted providers."""

from ..clock import FakeClock
from .chat_models import ChaosChatModel, MidStreamFailure, ScriptedChatModel
from .emulator import Behaviour, Fault, ProviderEmulator, RequestRecord, Success, ToolCall, parse_behaviour

__all__ = [
    "Behaviour",
    "ChaosChatModel",
    "FakeClock",
    "Fault",
    "MidStreamFailure",
    "ProviderEmulator",
    "RequestRecord",
    "ScriptedChatModel",
    "Success",
    "ToolCall",
    "parse_behaviour",
]
