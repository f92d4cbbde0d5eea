"""The token-bucket arithmetic, once: the local limiter, the store buckets and the emulator all step it.

The Redis script in ``state/_redis.py`` mirrors this function line for line (it runs on the server, in Lua).
A bucket is a level and the time it was last brought up to date. A *pause* ("the provider said: nothing until
T") is stored as debt: the level drops to ``1 - pause * rate``, so the next whole token is there exactly when the
pause ends and the refill after it is paced at the rate, with no extra state, no clock in the future, and the
same meaning in every process that shares the bucket.

A *reservation* is debt too (GCRA's "next free time"): a waiter that will wait takes its tokens now, the level
going below zero, and is told when they are due. Nobody asks again and nobody races for a refill, so a waiter
waking late loses nothing: the bucket kept refilling for whoever is due next. The level's debt is the schedule:
the latest reservation is due exactly when the level climbs back to zero (its *tail*).
"""

from __future__ import annotations

# Float refill arithmetic can leave a bucket a few ulps short of a whole token forever; treat that as enough.
EPSILON = 1e-9
MIN_WAIT = 1e-6
# How far a returned reservation's due time may sit before the bucket's tail and still be the latest one (the
# Redis script rounds due times up to whole microseconds, and they travel as float seconds since the epoch).
DUE_TOLERANCE = 2e-6


def apply_bucket(
    level: float | None,
    stamp: float,
    now: float,
    tokens: float,
    rate: float,
    burst: float,
    pause: float = 0.0,
    reserve: float = 0.0,
    due: float = 0.0,
) -> tuple[float, float, float]:
    """One step of a bucket: -> ``(wait, level, stamp)``.

    ``tokens > 0`` takes them (``wait == 0``) or takes nothing and says how long they need (``wait > 0``); with
    ``reserve > 0`` a need of at most ``reserve`` seconds is taken now as debt and ``wait < 0`` says they are
    due in ``-wait`` seconds. ``tokens < 0`` gives back; with ``due > 0`` it is a reservation due then (on this
    bucket's clock) being returned, which goes back only if no later reservation was made after it (giving it
    back would let the next one be due together with that later one); otherwise it stays spent. ``0`` only
    brings the level up to date. ``pause > 0`` first makes sure nothing is granted for ``pause`` seconds (a
    deeper debt already there is kept). A missing bucket (``level is None``) starts full. Time running
    backwards never refills.
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
        wait = max((tokens - level) / rate, MIN_WAIT)
        if wait <= reserve:
            return -wait, level - tokens, stamp
        return wait, level, stamp
    if tokens < 0:
        if due > 0 and level < 0 and stamp - level / rate > due + DUE_TOLERANCE:
            return 0.0, level, stamp  # a later reservation is due at the tail: this one's slot is gone
        level = min(float(burst), level - tokens)
    return 0.0, level, stamp
