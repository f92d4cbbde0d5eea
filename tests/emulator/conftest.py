"""The ``provider_emulator`` fixture, until the top-level conftest registers the plugin.

Once ``tests/conftest.py`` has ``pytest_plugins = ["langchain_ailib_resilience.testing.pytest_plugin"]``, this
import is redundant but harmless (the closer definition wins and is the same fixture).
"""

from langchain_ailib_resilience.testing.pytest_plugin import provider_emulator  # noqa: F401
