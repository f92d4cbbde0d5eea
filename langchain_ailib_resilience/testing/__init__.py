"""Tools for testing apps built on this package: virtual time, and (with the emulator) scripted providers."""

from ..clock import FakeClock

__all__ = ["FakeClock"]
