"""Curated mutants: one deliberate breakage per documented guarantee, and the tests that must
notice it.

Each mutant is applied to a scratch copy of the repository (never the working tree); the named
tests run there against the copy's code, and must fail. A mutant whose snippet is no longer in
its file is an error, not a pass, so the list cannot rot silently. A guarantee added later adds
its mutant here. Run with `python -m tests.mutants` (or `make mutants`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    """Replace `original` (exactly once) in `path` by `replacement`; `tests` must fail."""

    name: str
    guarantee: str
    path: str
    original: str
    replacement: str
    tests: tuple[str, ...]


GUARANTEES = "tests/e2e/test_guarantees.py"
RECORDER = "tests/e2e/test_recorder.py"
LIVE = "tests/e2e/test_guarantees_live.py"
STATE = "tests/contract/test_state_store.py"
RECOVERY = "tests/e2e/test_recovery.py"
FAIL_FAST = "tests/e2e/test_fail_fast.py"

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        name="recover-does-nothing",
        guarantee="a restarted recorder records what it (or a dead recorder) read and never acked",
        path="conductor/recorder.py",
        original='consumers left unacknowledged for longer than `claim_idle_ms`."""\n',
        replacement='consumers left unacknowledged for longer than `claim_idle_ms`."""\n'
        "        return 0\n",
        tests=(
            f"{RECORDER}::test_recorder_killed_mid_run_and_restarted_loses_and_doubles_nothing",
            f"{RECORDER}::test_entries_another_consumer_left_unacknowledged_are_claimed_once_stale",
        ),
    ),
    Mutant(
        name="ack-before-commit",
        guarantee="the recorder acknowledges a batch only once the history store committed it",
        path="conductor/recorder.py",
        original="        self.history.record(events)  # commits; only then acknowledge\n"
        "        self._keep_for_replay(events)\n"
        "        self.stream.settle([entry_id for entry_id, _ in entries])\n",
        replacement="        self.stream.settle([entry_id for entry_id, _ in entries])\n"
        "        self.history.record(events)\n"
        "        self._keep_for_replay(events)\n",
        tests=(
            f"{RECORDER}::test_recorder_killed_mid_run_and_restarted_loses_and_doubles_nothing",
        ),
    ),
    Mutant(
        name="lease-never-lapses",
        guarantee="a node whose attempt stopped renewing its lease is taken over by another",
        path="storage/lua/load.lua",
        original="local leased = node_status == 'running' and tonumber(node[3] or '0') > clock",
        replacement="local leased = node_status == 'running' and tonumber(node[3] or '0') > 0",
        tests=(f"{GUARANTEES}::test_a_stale_attempts_outcome_is_refused_after_another_took_over",),
    ),
    Mutant(
        name="stale-attempt-accepted",
        guarantee="a stale attempt's outcome is fenced off once another attempt took the node",
        path="storage/lua/prelude.lua",
        original="return token == '' or (st[1] == 'running' and st[2] == token)",
        replacement="return token == '' or st[1] == 'running'",
        tests=(
            f"{GUARANTEES}::test_a_stale_attempts_outcome_is_refused_after_another_took_over",
            f"{STATE}::test_a_stale_attempt_is_fenced_off_once_another_took_over[redis]",
        ),
    ),
    Mutant(
        name="finalize-repair-off",
        guarantee="the reconciler finalizes an execution whose nodes all finished (or one "
        "failed) when the worker died before finalizing",
        path="conductor/reconciler.py",
        original="if unsettled is not None or len(stored.done) >= len(stored.plan.nodes):",
        replacement="if False:",
        tests=(f"{GUARANTEES}::test_the_reconciler_finalizes_what_a_dead_worker_left_unfinalized",),
    ),
    Mutant(
        name="no-event-on-cancel",
        guarantee="a cancelled execution publishes execution.cancelled (stream, log, channels)",
        path="storage/lua/finish.lua",
        original="redis.call('XADD', stream_key, '*', 'event', text)\n"
        "redis.call('RPUSH', log_key, text)\n",
        replacement="if status ~= 'cancelled' then\n"
        "redis.call('XADD', stream_key, '*', 'event', text)\n"
        "redis.call('RPUSH', log_key, text)\n"
        "end\n",
        tests=(
            f"{GUARANTEES}::test_cancel_publishes_the_terminal_event_once",
            "tests/e2e/test_control.py::test_the_reconciler_finishes_a_cancel_cut_short",
        ),
    ),
    Mutant(
        name="idempotency-key-ignored",
        guarantee="the same idempotency key gives the same execution",
        path="conductor/submission.py",
        original="        if idempotency_key is None:\n",
        replacement="        if True:\n",
        tests=(
            "tests/e2e/test_celery_submit.py"
            "::test_the_same_idempotency_key_gives_the_same_execution",
        ),
    ),
    Mutant(
        name="blob-reference-not-followed",
        guarantee="an output over the blob threshold flows downstream in full",
        path="storage/blobs.py",
        original="        value = json.loads(blobs.get(value[BLOB_KEY]))\n",
        replacement="        pass\n",
        tests=(
            "tests/unit/test_blob_packing.py::test_an_output_of_many_small_strings_is_one_json_blob",
        ),
    ),
    Mutant(
        name="blob-temp-left-behind",
        guarantee="a failed blob write leaves no temporary file that keeps the store full",
        path="storage/blob_files.py",
        original="                with suppress(FileNotFoundError):\n                    os.unlink(tmp)\n",
        replacement="                pass\n",
        tests=("tests/unit/test_blob_store.py::test_a_failed_write_leaves_no_temporary_file",),
    ),
    Mutant(
        name="returning-message-reruns",
        guarantee="a dead worker's message returning after the visibility timeout is ignored: "
        "the node's outcome is recorded once and its work is not done again",
        path="workers/run_node.py",
        original="    if load is None or load.node_status in FINISHED_NODE:\n",
        replacement="    if load is None:\n",
        tests=(
            f"{LIVE}::test_a_dead_workers_message_returning_after_the_visibility_timeout"
            "_is_ignored",
        ),
    ),
    Mutant(
        name="stall-never-redispatched",
        guarantee="an execution with nothing running or queued (a hard-limit kill inside a loop "
        "item, a lost message) is sent again by the reconciler and ends final",
        path="conductor/reconciler.py",
        original="if idle_ms < self.stall_s * 1000 or self._backlog(stored):",
        replacement="if True:",
        tests=(
            f"{LIVE}::test_a_hard_limit_kill_inside_a_loop_item_is_left_to_the_reconciler",
            "tests/e2e/test_faults.py::test_the_reconciler_resends_a_lost_message",
        ),
    ),
    Mutant(
        name="recorder-stops-on-redis-loss",
        guarantee="the recorder rides out a Redis crash and records every event after it",
        path="conductor/recorder.py",
        original="            except Exception as exc:  # Redis or the history store is away: wait and go on\n",
        replacement="            except ValueError as exc:\n",
        tests=(f"{LIVE}::test_a_redis_crash_mid_run_leaves_every_accepted_execution_final",),
    ),
    Mutant(
        name="retry-keeps-settled-consumers",
        guarantee="retry re-runs what consumed a failed node's settled output (a parallel in "
        "allSettled), not only the failed nodes",
        path="conductor/control.py",
        original="record.status is not NodeStatus.PENDING:",
        replacement="record.status is NodeStatus.PENDING:",
        tests=(f"{LIVE}::test_retry_reruns_an_all_settled_parallel",),
    ),
    Mutant(
        name="backoff-uncapped",
        guarantee="retries wait 1, 2, 4, then at most 5 s",
        path="workers/run_node.py",
        original="    return min(base * random.uniform(0.8, 1.2), MAX_BACKOFF_S)\n",
        replacement="    return base * random.uniform(0.8, 1.2)\n",
        tests=(f"{LIVE}::test_retries_wait_at_most_five_seconds",),
    ),
    Mutant(
        name="submit-task-id-not-the-key",
        guarantee="a redelivered conductor.submit message (same Celery task id) gives the same "
        "execution",
        path="conductor/submit_task.py",
        original='idempotency_key=idempotency_key or f"celery-task:{self.request.id}",',
        replacement="idempotency_key=idempotency_key,",
        tests=(f"{LIVE}::test_a_redelivered_submit_message_gives_the_same_execution",),
    ),
    Mutant(
        name="reconciler-not-isolated",
        guarantee="an execution whose state is broken never stops a reconciler pass",
        path="conductor/reconciler.py",
        original="                    repair = self.check_isolated(execution_id, now)\n",
        replacement="                    repair = self.check(execution_id, now)\n",
        tests=(
            f"{RECOVERY}::test_a_poisoned_execution_does_not_stop_a_pass_from_recovering_another",
        ),
    ),
    Mutant(
        name="stuck-not-cancellable",
        guarantee="an execution can be cancelled whatever its nodes' state",
        path="storage/lua/cancel.lua",
        original="if not is_live(status) then return 0 end\n",
        replacement="if not is_live(status) then return 0 end\n"
        "if redis.call('SCARD', (string.gsub(KEYS[1], ':meta$', ':done'))) >= "
        "tonumber(redis.call('HGET', meta_key, 'total')) then return 0 end\n",
        tests=(f"{RECOVERY}::test_a_stuck_execution_can_be_cancelled",),
    ),
    Mutant(
        name="fail-fast-no-drain",
        guarantee="a failed execution ends every node without an outcome (fencing it) in the "
        "script that ends the execution, and names them in its terminal event",
        path="storage/lua/finish.lua",
        original="if status ~= 'succeeded' then\n",
        replacement="if false then\n",
        tests=(
            f"{FAIL_FAST}::test_a_failure_drains_a_sibling_in_its_retries_and_retry_reruns_the_rest",
            f"{STATE}::test_a_failure_drains_every_node_without_an_outcome[redis]",
        ),
    ),
    Mutant(
        name="history-not-drained",
        guarantee="history ends the node runs a failed execution cancelled, as Redis does",
        path="storage/history_state.py",
        original="        if isinstance(data, _EndedData):\n            return self._drained(event)\n",
        replacement="",
        tests=(
            f"{FAIL_FAST}::test_a_failure_drains_a_sibling_in_its_retries_and_retry_reruns_the_rest",
        ),
    ),
    Mutant(
        name="schedule-tick-never-claimed",
        guarantee="a schedule's tick fires once: the beat moves the schedule past the ticks it "
        "sent (issue 19)",
        path="storage/schedules.py",
        original='                pipe.hset(key, "last_tick_s", str(up_to_s))\n',
        replacement='                pipe.hget(key, "last_tick_s")\n',
        tests=(
            "tests/e2e/test_schedules.py::"
            "test_two_beats_fire_each_tick_once_pause_stops_rm_removes",
        ),
    ),
    Mutant(
        name="hook-signature-unchecked",
        guarantee="a webhook delivery without a valid X-Hub-Signature-256 starts nothing",
        path="conductor/hooks.py",
        original='    if not header or not header.startswith("sha256="):\n        return False\n',
        replacement='    if not header or not header.startswith("sha256="):\n        return True\n',
        tests=(
            "tests/e2e/test_hooks.py::test_refusals",
            "tests/unit/test_hook_rules.py::test_a_signature_over_the_raw_body",
        ),
    ),
    Mutant(
        name="hook-replay-new-execution",
        guarantee="the same webhook delivery id gives the same execution",
        path="conductor/api/hooks.py",
        original="delivery_key(hook, request.headers))",
        replacement="None)",
        tests=("tests/e2e/test_hooks.py::test_the_same_delivery_id_is_the_same_execution",),
    ),
    Mutant(
        name="large-file-read-whole",
        guarantee="a file-system read above the blob threshold streams into one blob instead of "
        "being held in memory (issue 16)",
        path="nodes/file_streams.py",
        original="    if blobs is None or target.stat().st_size <= environment.blob_threshold_bytes:\n",
        replacement="    if True:\n",
        tests=(
            "tests/unit/test_file_streams.py::"
            "test_a_large_file_is_read_into_one_blob_and_written_back",
        ),
    ),
    Mutant(
        name="blob-gc-ignores-marks",
        guarantee="the blob collector never deletes a blob something still refers to (issue 16)",
        path="storage/blob_gc.py",
        original="        if info.ref in marked:\n            continue\n",
        replacement="",
        tests=("tests/unit/test_blob_gc.py::test_a_pass_deletes_only_old_unreferenced_blobs",),
    ),
    Mutant(
        name="replay-from-reruns-upstream",
        guarantee="replay --from NODE keeps the recorded outputs of what NODE does not depend "
        "on: those nodes do not run again (issue 17)",
        path="conductor/replay.py",
        original="            reused = reusable(plan, from_node, keep)\n",
        replacement="            reused = {}\n",
        tests=(
            "tests/e2e/test_replay.py::test_replay_from_the_middle_node_keeps_the_upstream_output",
        ),
    ),
    Mutant(
        name="line-never-admitted",
        guarantee="when a concurrency key's slot frees (an execution with it ended, or the "
        "reconciler reclaimed it), the next in line is admitted (issue 19 item 5)",
        path="storage/lua/release_slot.lua",
        original="    if redis.call('ZCARD', running_key) >= (tonumber(meta[2]) or 1) then break end\n",
        replacement="    break\n",
        tests=(
            "tests/contract/test_concurrency.py::"
            "test_an_end_admits_the_next_in_line_first_in_first_out",
            "tests/e2e/test_concurrency_keys.py::test_a_failure_frees_the_slot",
        ),
    ),
    Mutant(
        name="priority-not-sent",
        guarantee="a priority-9 execution's nodes overtake a backlog in their queue",
        path="workers/signatures.py",
        original='{"priority": broker_priority(node.priority)}',
        replacement='{"priority": broker_priority(None)}',
        tests=("tests/e2e/test_priorities.py::test_a_priority_9_node_overtakes_a_backlog",),
    ),
    Mutant(
        name="step-runs-everything",
        guarantee="while stepping, a node the step did not choose pauses the execution before it "
        "(issue 17)",
        path="storage/lua/load.lua",
        original="    return 'hold'\n  end\n  if redis.call('HEXISTS'",
        replacement="    return nil\n  end\n  if redis.call('HEXISTS'",
        tests=(
            "tests/contract/test_breakpoints.py::"
            "test_a_step_runs_the_chosen_nodes_and_pauses_before_the_next",
        ),
    ),
    Mutant(
        name="branch-not-taken-runs",
        guarantee="nodes on a branch an `if`/`switch` did not take end skipped, and skipping "
        "propagates (issue 19)",
        path="nodes/branching.py",
        original="    return not isinstance(branches, list) or handle in branches\n",
        replacement="    return True\n",
        tests=(
            "tests/unit/test_run_conditions.py::"
            "test_the_branch_not_taken_is_skipped_and_the_join_gets_what_arrived",
            "tests/e2e/test_conditions.py::test_both_branches_of_an_if_and_the_join_after_them",
        ),
    ),
    Mutant(
        name="arrival-not-kept-on-the-node",
        guarantee="a waiting node takes one signal, once: an attempt after a lost worker finds "
        "the same arrival, not the next signal (issue 19 item 4)",
        path="storage/lua/park.lua",
        original="  redis.call('HSET', nodes_key, k .. 'arrival', arrival)\n",
        replacement="  redis.call('HGET', nodes_key, k .. 'arrival')\n",
        tests=(
            "tests/contract/test_waits.py::"
            "test_a_signal_sent_before_the_wait_is_kept_and_taken_once",
        ),
    ),
    Mutant(
        name="parked-execution-seen-as-stalled",
        guarantee="a parked execution waits as long as its wait: the reconciler does not re-send "
        "or fail it as stalled (issue 19 item 4)",
        path="conductor/reconciler.py",
        original="        if self._parked(execution_id, snapshot):\n",
        replacement="        if False:\n",
        tests=("tests/unit/test_parking.py::test_the_reconciler_leaves_a_parked_execution_alone",),
    ),
    Mutant(
        name="limits-ignored",
        guarantee="a node's resources limit it, whatever its type: over its memory it fails "
        "MEMORY_LIMIT_EXCEEDED and its worker goes on (issue 16 item 4)",
        path="workers/run_node.py",
        original="        if self.spec.resources is None:\n            return call.run()\n",
        replacement="        if True:\n            return call.run()\n",
        tests=(
            "tests/e2e/test_resources.py::"
            "test_memory_over_its_limit_fails_the_node_and_the_worker_takes_the_next_task",
        ),
    ),
    Mutant(
        name="sentinel-client-pinned",
        guarantee="behind Sentinels every client follows the primary through a failover (issue 16)",
        path="storage/redis_client.py",
        original="    return redis.Redis.from_pool(pool)\n",
        replacement="    host, port = sentinels.discover_master(master)\n"
        "    return redis.Redis(host=host, port=port, **credentials)\n",
        tests=(
            "tests/e2e/test_sentinel.py::"
            "test_a_primary_killed_mid_run_fails_over_and_loses_nothing",
        ),
    ),
    Mutant(
        name="sentinel-writes-unreplicated",
        guarantee="behind Sentinels a creation returns, and the recorder records events, only "
        "once a replica holds them: a failover loses no accepted execution and takes back no "
        "recorded history (issue 16)",
        path="storage/redis_backend.py",
        original="replicas=1 if is_sentinel(url) else 0",
        replacement="replicas=0",
        tests=(
            "tests/unit/test_sentinel_config.py::"
            "test_behind_sentinels_creations_and_the_recorder_wait_for_a_replica",
        ),
    ),
    Mutant(
        name="child-end-not-handed-to-parent",
        guarantee="a child execution's end reaches its parent's blueprint node, also when it "
        "ends before the node parks (issue 17 item 1)",
        path="storage/lua/finish.lua",
        original="    redis.call('RPUSH', parent_signals, signal .. '\\n' .. payload)\n",
        replacement="    redis.call('LLEN', parent_signals)\n",
        tests=(
            "tests/contract/test_child_handoff.py::"
            "test_a_child_that_ends_before_its_node_parks_is_kept",
        ),
    ),
)
