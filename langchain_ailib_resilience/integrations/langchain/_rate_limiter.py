"""The token bucket as a LangChain ``BaseRateLimiter``: ``ChatOpenAI(rate_limiter=RateLimiter(...))``.

The bucket itself (``policies.rate_limiter``) knows nothing of LangChain; this subclass only adds the base class,
whose ``acquire``/``aacquire`` the bucket already implements. ``langchain_core.rate_limiters`` is light (no chat
model machinery), so the package root imports this module eagerly.
"""

from __future__ import annotations

from langchain_core.rate_limiters import BaseRateLimiter

from ...policies.rate_limiter import RateLimiter as _TokenBucket


class RateLimiter(_TokenBucket, BaseRateLimiter):
    """A token bucket (``policies.rate_limiter.RateLimiter``) that LangChain chat models accept as ``rate_limiter``.

    Example::

        limiter = RateLimiter(requests_per_second=10, burst_size=20)
        ChatOpenAI(model="gpt-4o-mini", rate_limiter=limiter)
        ResilientConfig(rate_limiter=RateLimiterConfig(...))  # or let the executor own one per target
    """
