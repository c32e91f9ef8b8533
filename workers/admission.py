"""Concurrency keys at the end of an execution: give its slot back, send who it admitted."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from storage.redis_client import StoreError
from workers.stores import Stores

log = logging.getLogger(__name__)


def release_slot(execution_id: str, stores: Stores) -> None:
    """Give back the slot of an execution that ended and dispatch the executions next in its
    key's line. A failure here loses nothing: the reconciler's sweep reclaims the slot, and
    re-sends an admitted execution that was not dispatched (it is in the live index)."""
    if stores.slots is None:
        return
    try:
        admitted = stores.slots.release(execution_id)
    except StoreError:
        log.exception("execution %s: its concurrency slot is left to the reconciler", execution_id)
        return
    dispatch_admitted(admitted, stores)


def dispatch_admitted(execution_ids: Iterable[str], stores: Stores) -> None:
    """Send the canvas of each execution a freed slot admitted."""
    for execution_id in execution_ids:
        log.info("execution %s: admitted to a concurrency slot", execution_id)
        if stores.admit is None:
            continue  # the reconciler sends it (it is in the live index)
        try:
            stores.admit(execution_id)
        except Exception:  # it is in the live index: the reconciler sends it
            log.exception("execution %s: admitted but not dispatched", execution_id)
