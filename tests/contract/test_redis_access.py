"""The small stores the layers above storage/ use instead of Redis commands, each over Redis
and its in-memory twin; and the API's shared event subscription under a lost connection."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from storage import keys
from storage.event_source import EventsMissed, FanOutEventSource, RedisEventSource
from storage.idempotency import IdempotencyClaims, MemoryIdempotency, RedisIdempotency
from storage.presence import MemoryPresence, PresenceStore, RedisPresence, WorkerPresence
from storage.redis_client import redis_client


@pytest.fixture(params=["memory", "redis"])
def claims(request: pytest.FixtureRequest, redis_client: redis.Redis) -> IdempotencyClaims:
    """Idempotency claims on each backend."""
    if request.param == "memory":
        return MemoryIdempotency()
    return RedisIdempotency(redis_client)


def test_the_first_claim_wins_and_expires(claims: IdempotencyClaims) -> None:
    key = f"order-{uuid.uuid4()}"
    assert claims.holder(key) is None
    assert claims.claim(key, "first", ttl_s=1)
    assert not claims.claim(key, "second", ttl_s=1)
    assert claims.holder(key) == "first"
    wait_until(lambda: claims.holder(key) is None, timeout_s=5)
    assert claims.claim(key, "third", ttl_s=60)
    assert claims.holder(key) == "third"


@pytest.fixture(params=["memory", "redis"])
def presence(request: pytest.FixtureRequest, redis_client: redis.Redis) -> PresenceStore:
    """Worker presence on each backend."""
    if request.param == "memory":
        return MemoryPresence()
    return RedisPresence(redis_client)


def test_a_worker_is_live_until_withdrawn_or_expired(presence: PresenceStore) -> None:
    names = [f"w{i}-{uuid.uuid4().hex[:6]}" for i in range(2)]
    lasting, brief = (
        WorkerPresence(name=name, queues=["conductor"], pid=1, started_at=time.time())
        for name in names
    )
    presence.announce(lasting, ttl_s=60)
    presence.announce(brief, ttl_s=1)
    assert [lasting, brief] == [p for p in presence.live() if p.name in names]
    wait_until(lambda: brief not in presence.live(), timeout_s=5)
    assert lasting in presence.live()
    presence.withdraw(lasting.name)
    assert lasting not in presence.live()


def publish(client: redis.Redis, execution_id: str, seq: int, kind: str = "node.started") -> None:
    """What the state store's scripts publish for an event."""
    event = {"execution_id": execution_id, "seq": seq, "type": kind}
    client.publish(keys.events_channel(execution_id), json.dumps(event))


@pytest.mark.parametrize("make", [RedisEventSource, FanOutEventSource])
def test_a_subscription_hears_its_execution_only_from_when_it_returns(
    make: Callable[[redis.Redis], RedisEventSource | FanOutEventSource], redis_client: redis.Redis
) -> None:
    source = make(redis_client)
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    subscription = source.subscribe(mine)
    everything = source.subscribe_all()
    publish(redis_client, other, 1)
    publish(redis_client, mine, 1)
    publish(redis_client, mine, 2, "execution.succeeded")
    heard = [json.loads(subscription.get(5) or "null")["seq"] for _ in range(2)]
    assert heard == [1, 2]
    assert subscription.get(0.2) is None
    assert [json.loads(everything.get(5) or "null")["execution_id"] for _ in range(3)] == [
        other,
        mine,
        mine,
    ]
    subscription.close()
    everything.close()


def redis_client_like(client: redis.Redis) -> redis.Redis:
    """A client under the one policy, on the same server as `client`."""
    kwargs = client.connection_pool.connection_kwargs
    return redis_client(f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}")


@pytest.fixture(params=["per-subscription", "shared"])
def source(
    request: pytest.FixtureRequest, redis_client: redis.Redis
) -> Iterator[RedisEventSource | FanOutEventSource]:
    """Each event source on its own client (its connections are killed by the test)."""
    client = redis_client_like(redis_client)
    made = RedisEventSource(client) if request.param == "per-subscription" else None
    shared = FanOutEventSource(client) if made is None else None
    yield made or shared  # type: ignore[misc]
    if shared is not None:
        shared.close()
    client.close()


def test_a_subscription_made_again_says_events_were_missed_then_hears_on(
    source: RedisEventSource | FanOutEventSource, redis_client: redis.Redis
) -> None:
    """redis-py reconnects and subscribes again by itself: what was published in between is
    lost, so the subscriber is told once (it reads the gap from the event log)."""
    execution_id = str(uuid.uuid4())
    subscription = source.subscribe(execution_id)
    assert redis_client.client_kill_filter(_type="pubsub") >= 1  # every pub/sub connection
    publish(redis_client, execution_id, 1)  # lost, unless the subscription is already back
    with pytest.raises(EventsMissed):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            subscription.get(0.5)  # told once, whether or not seq 1 got through
    wait_until(
        lambda: (
            redis_client.pubsub_numpat()
            + redis_client.pubsub_numsub(keys.events_channel(execution_id))[0][1]
            > 0
        ),
        timeout_s=10,
    )
    publish(redis_client, execution_id, 2)
    seen: list[int] = []
    deadline = time.monotonic() + 5
    while 2 not in seen and time.monotonic() < deadline:
        text = subscription.get(0.5)
        if text is not None:
            seen.append(json.loads(text)["seq"])
    assert seen in ([2], [1, 2]), seen  # seq 1 only when the subscription was back in time
    subscription.close()


def wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    """Poll `condition` until true, at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)
