"""The token-bucket arithmetic, once: the local limiter, the store buckets and the emulator all step it.

The Redis script in ``state/_redis.py`` mirrors this function line for line (it runs on the server, in Lua).
A bucket is a level and the time it was last brought up to date. A *pause* ("the provider said: nothing until
T") is stored as debt: the level drops to ``1 - pause * rate``, so the next whole token is there exactly when the
pause ends and the refill after it is paced at the rate, with no extra state, no clock in the future, and the
same meaning in every process that shares the bucket.
"""

from __future__ import annotations

# Float refill arithmetic can leave a bucket a few ulps short of a whole token forever; treat that as enough.
EPSILON = 1e-9
MIN_WAIT = 1e-6


def apply_bucket(
    level: float | None,
    stamp: float,
    now: float,
    tokens: float,
    rate: float,
    burst: float,
    pause: float = 0.0,
) -> tuple[float, float, float]:
    """One step of a bucket: -> ``(wait, level, stamp)``.

    ``tokens > 0`` takes them (``wait == 0``) or takes nothing and says how long they need; ``< 0`` gives back;
    ``0`` only brings the level up to date. ``pause > 0`` first makes sure nothing is granted for ``pause``
    seconds (a deeper debt already there is kept). A missing bucket (``level is None``) starts full. Time
    running backwards never refills.
    """
    if level is None:
        level, stamp = burst, now
    elif now > stamp:
        level, stamp = level + (now - stamp) * rate, now
    if not level < burst:  # ``min(float(burst), level)``, without two builtin calls on every admission
        level = float(burst)
    if pause > 0:
        level = min(level, 1.0 - pause * rate)
    if tokens > 0:
        if level + EPSILON >= tokens:
            return 0.0, level - tokens, stamp
        return max((tokens - level) / rate, MIN_WAIT), level, stamp
    if tokens < 0:
        level = min(float(burst), level - tokens)
    return 0.0, level, stamp
