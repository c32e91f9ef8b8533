"""Every Redis key and channel name Conductor uses, in one place.

Per-execution keys share the hash tag `{<execution id>}` so a Lua script may touch them all.
"""

from __future__ import annotations

PREFIX = "conductor"


def meta(execution_id: str) -> str:
    """Hash: status, timings, inputs, variables, totals and the event sequence."""
    return f"{PREFIX}:exec:{{{execution_id}}}:meta"


def plan(execution_id: str) -> str:
    """Hash: node key -> planned node (JSON)."""
    return f"{PREFIX}:exec:{{{execution_id}}}:plan"


def nodes(execution_id: str) -> str:
    """Hash: `<node key>:<field>` -> node run state (status, attempts, timings, error)."""
    return f"{PREFIX}:exec:{{{execution_id}}}:nodes"


def outputs(execution_id: str) -> str:
    """Hash: node key -> node output (JSON, or a blob reference)."""
    return f"{PREFIX}:exec:{{{execution_id}}}:outputs"


def done(execution_id: str) -> str:
    """Set: keys of nodes with an outcome (succeeded, skipped, or a settled failure)."""
    return f"{PREFIX}:exec:{{{execution_id}}}:done"


def signals(execution_id: str) -> str:
    """List: signals sent and not yet taken by a node, oldest first (`<name>\\n<payload>`)."""
    return f"{PREFIX}:exec:{{{execution_id}}}:signals"


def waiting(execution_id: str) -> str:
    """Hash: parked node key -> the signal it waits for ('' for a delay)."""
    return f"{PREFIX}:exec:{{{execution_id}}}:waiting"


def events_log(execution_id: str) -> str:
    """List: the execution's events in seq order (replayed to late or reconnecting viewers)."""
    return f"{PREFIX}:exec:{{{execution_id}}}:events"


def rate_limit(key: str) -> str:
    """Hash: a token bucket (tokens, last refill in ms) shared by nodes with this key."""
    return f"{PREFIX}:rate:{key}"


def node_cache(digest: str) -> str:
    """String: a cached node output (packed), by the digest of what produced it."""
    return f"{PREFIX}:cache:{digest}"


def idempotency(key_digest: str) -> str:
    """String: the execution id submitted under an idempotency key (its SHA-256)."""
    return f"{PREFIX}:idem:{key_digest}"


def slots_running(concurrency_key: str) -> str:
    """Sorted set: execution id -> when it took one of the key's slots (ms); at most its
    max_running members."""
    return f"{PREFIX}:slots:{{{concurrency_key}}}:running"


def slots_waiting(concurrency_key: str) -> str:
    """List: ids of the key's executions waiting for a slot, first in line first."""
    return f"{PREFIX}:slots:{{{concurrency_key}}}:waiting"


# Set: concurrency keys with a slot taken or a line (the reconciler sweeps them).
SLOT_KEYS = f"{PREFIX}:slots:keys"


def meta_pattern() -> tuple[str, str]:
    """What comes before and after the execution id in `meta` (scripts that find executions
    in a line build their meta keys from it)."""
    before, _, after = meta("\n").partition("\n")
    return before, after


def result(execution_id: str) -> str:
    """String: the execution's final result object (JSON); written once."""
    return f"{PREFIX}:exec:{{{execution_id}}}:result"


EVENTS_STREAM = f"{PREFIX}:events"  # every execution's events, for the recorder
RECORDER_GROUP = "recorder"
# Sorted set: live execution id -> when it last made progress (ms); the reconciler scans it.
LIVE_EXECUTIONS = f"{PREFIX}:live"
# Sorted set: `<execution id>\n<node key>` of a parked node -> when to send its execution
# again (ms, Redis clock).
WAKEUPS = f"{PREFIX}:wakeups"
# list: a nudge per wake-up made due now (a child execution ended): wake-up threads BLPOP it
WAKEUP_NUDGES = f"{PREFIX}:wakeups:nudges"


def lock(name: str) -> str:
    """String with a TTL: a lock's holder token (SET NX PX; released only by its holder)."""
    return f"{PREFIX}:{name}"


RECONCILER_LOCK = lock("reconciler")  # held by the one reconciler running a pass


def events_channel(execution_id: str) -> str:
    """Pub/sub channel of an execution's live events (the contract's name)."""
    return f"{PREFIX}:events:{execution_id}"


def done_channel(execution_id: str) -> str:
    """Pub/sub channel of the terminal event only: for waiters that need nothing else (they
    wake once instead of once per event)."""
    return f"{PREFIX}:done:{execution_id}"


def execution_keys(execution_id: str) -> list[str]:
    """All keys one execution owns (for expiry and clean-up)."""
    return [
        meta(execution_id),
        plan(execution_id),
        nodes(execution_id),
        outputs(execution_id),
        done(execution_id),
        result(execution_id),
        events_log(execution_id),
        signals(execution_id),
        waiting(execution_id),
    ]


WORKERS = f"{PREFIX}:workers"  # sorted set: worker name -> last presence refresh (unix s)


def worker_presence(name: str) -> str:
    """String with a TTL: a live worker's presence (JSON); it expires when the worker stops
    refreshing it."""
    return f"{PREFIX}:worker:{name}"


def blueprint_archive(digest: str) -> str:
    """String: a submitted Blueprint (canonical JSON) by its SHA-256, until the recorder has
    copied it into the history store (content-addressed: one copy per distinct Blueprint)."""
    return f"{PREFIX}:blueprint:{digest}"
