"""The named lifecycle operations: each owns its allowed from-states and its field changes.

Every operation is one compare-and-set on one task document, written here once and applied by
any repository (MongoDB, FerretDB through the write gate, the in-memory twin):

============== ======================================= ===================== ================
operation      from                                    to                    publishes
============== ======================================= ===================== ================
create         (new)                                   queued                run
claim          queued, pending; running w/ lapsed lease running (new run)    -
resume         running, same run                       running               -
record_job     running, same run                       running               poll after t
heartbeat      running, same run                       running               poll after t (if)
complete       running, same run                       succeeded             -
schedule_retry running, same run                       queued                run after t
fail           running, same run                       failed                -
fail_lost      running, same run, lease lapsed         failed                -
requeue_lost   running, same run, lease lapsed         queued                run
republish      queued/pending, untouched since t       queued                run
cancel         pending, queued, running                cancelled             -
retry          failed                                  queued (attempts 0)   run
expire         succeeded                               expired               -
reroute        running, same run                       queued (attempts 0)   run (fallback's)
============== ======================================= ===================== ================

"Publishes" is the transactional outbox: the step's write also stamps the task with the relay
that will publish (``outbox``), so the intent and the state change are one write; a claim
clears the stamp. A relay that dies before publishing is found by its stale heartbeat and its
stamped tasks are published again by another (see ``outbox.py``).

Runs hold a lease (``lease_until``) renewed by heartbeats; only a lapsed lease lets another
claim take a running task over, so a duplicate delivery never starts a second provider call
while the first run is alive. Attempts are counted here, once per started run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from genhub.common.ids import new_token
from genhub.common.topology import MessageKind
from genhub.taskstore import states

Document = dict[str, Any]
ACTIVE = frozenset({"pending", "queued", "running"})


@dataclass(frozen=True)
class Clause:
    """One way a document may satisfy a guard."""

    statuses: frozenset[str]
    run_id: str = ""  # the current run must be this one
    lease_lapsed_at: datetime | None = None  # the run's lease must have ended before this
    attempts_below: int | None = None  # fewer attempts than this
    untouched_since: datetime | None = None  # updated_at before this
    provider: str = ""  # the task must be served by this provider (see documents.route)

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """Whether ``doc`` satisfies this clause (evaluated in Python: gate and twin)."""
        if doc.get("status") not in self.statuses:
            return False
        if self.run_id and doc.get("run_id") != self.run_id:
            return False
        if self.lease_lapsed_at is not None:
            lease = doc.get("lease_until")
            if lease is None or not lease < self.lease_lapsed_at:
                return False
        if (
            self.attempts_below is not None
            and not int(doc.get("attempts", 0)) < self.attempts_below
        ):
            return False
        if self.untouched_since is not None:
            updated = doc.get("updated_at")
            if updated is None or not updated < self.untouched_since:
                return False
        if self.provider:
            served = doc.get("served_by") or {}
            if (served.get("provider") or doc.get("provider")) != self.provider:
                return False
        return True

    def to_filter(self) -> dict[str, Any]:
        """The same clause as a MongoDB query."""
        query: dict[str, Any] = {"status": {"$in": sorted(self.statuses)}}
        if self.run_id:
            query["run_id"] = self.run_id
        if self.lease_lapsed_at is not None:
            query["lease_until"] = {"$lt": self.lease_lapsed_at}
        if self.attempts_below is not None:
            query["attempts"] = {"$lt": self.attempts_below}
        if self.untouched_since is not None:
            query["updated_at"] = {"$lt": self.untouched_since}
        if self.provider:
            query["$or"] = [
                {"served_by": None, "provider": self.provider},
                {"served_by.provider": self.provider},
            ]
        return query


@dataclass(frozen=True)
class Guard:
    """The from-states of an operation: any of its clauses."""

    clauses: tuple[Clause, ...]

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """Whether ``doc`` may take the step."""
        return any(c.matches(doc) for c in self.clauses)

    def to_filter(self) -> dict[str, Any]:
        """The guard as a MongoDB query (without ``_id``)."""
        if len(self.clauses) == 1:
            return self.clauses[0].to_filter()
        return {"$or": [c.to_filter() for c in self.clauses]}

    @property
    def statuses(self) -> frozenset[str]:
        """Every status some clause accepts."""
        return frozenset().union(*(c.statuses for c in self.clauses))


@dataclass(frozen=True)
class Change:
    """The fields a step sets (and increments)."""

    set: Mapping[str, Any]
    inc: Mapping[str, int] = field(default_factory=dict)

    def to_update(self) -> dict[str, Any]:
        """The change as a MongoDB update document."""
        update: dict[str, Any] = {"$set": dict(self.set)}
        if self.inc:
            update["$inc"] = dict(self.inc)
        return update

    def apply(self, doc: Mapping[str, Any]) -> Document:
        """A copy of ``doc`` with the change applied (the twin's update)."""
        new = copy.deepcopy(dict(doc))
        new.update(copy.deepcopy(dict(self.set)))
        for key, by in self.inc.items():
            new[key] = int(new.get(key, 0)) + by
        return new


@dataclass(frozen=True)
class Publish:
    """The message a step intends to publish once written (the outbox entry)."""

    kind: MessageKind
    delay: float = 0.0
    run_id: str = ""  # POLL messages carry their run
    sealed_credentials: str = field(default="", repr=False)  # never stored


@dataclass(frozen=True)
class Step:
    """One compare-and-set: when ``guard`` holds, apply ``change`` (then publish)."""

    operation: str
    guard: Guard
    change: Change
    publish: Publish | None = None
    to_status: str = ""

    def with_outbox(self, relay: str) -> Step:
        """This step with the relay that will publish stamped into its change."""
        if self.publish is None:
            return self
        stamped = {**self.change.set, "outbox": relay}
        return Step(
            self.operation,
            self.guard,
            Change(stamped, self.change.inc),
            self.publish,
            self.to_status,
        )


def _only(*statuses: str, run_id: str = "", **conditions: Any) -> Guard:
    return Guard((Clause(frozenset(statuses), run_id, **conditions),))


def _legal(from_statuses: frozenset[str], to: str) -> None:
    # The transition table is the law; a rule that breaks it is a bug here, caught at import.
    for source in from_statuses:
        if not states.is_legal(states.BY_NAME[source], states.BY_NAME[to]):
            raise AssertionError(f"illegal transition {source} -> {to}")


def _step(operation: str, guard: Guard, to: str, fields: dict[str, Any], **kwargs: Any) -> Step:
    _legal(guard.statuses, to)
    fields = {"status": to, **fields}
    return Step(operation, guard, Change(fields, kwargs.pop("inc", {})), to_status=to, **kwargs)


def _ended(now: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "run_id": "",
        "lease_until": None,
        "updated_at": now,
        "finished_at": now,
        **fields,
    }


def new_document(base: Document, now: datetime) -> Document:
    """A created task's document: queued, no attempts yet (``base`` from documents.py)."""
    return {
        **base,
        "status": "queued",
        "attempts": 0,
        "max_attempts": 0,
        "run_id": "",
        "lease_until": None,
        "outbox": "",
        "created_at": now,
        "updated_at": now,
    }


def create(sealed_credentials: str = "") -> Publish:
    """The run message a new task publishes."""
    return Publish(MessageKind.RUN, sealed_credentials=sealed_credentials)


def claim(now: datetime, lease: float, max_attempts: int, provider: str = "") -> Step:
    """Start a new run: a queued task, or a running one whose worker's lease lapsed (its worker
    died) while attempts remain. Counts an attempt and issues a run id. With ``provider`` (the
    claiming worker's), only a task that provider serves."""
    guard = Guard(
        (
            Clause(frozenset({"queued", "pending"}), provider=provider),
            Clause(
                frozenset({"running"}),
                lease_lapsed_at=now,
                attempts_below=max_attempts,
                provider=provider,
            ),
        )
    )
    return _step(
        "claim",
        guard,
        "running",
        {
            "run_id": new_token(),
            "started_at": now,
            "updated_at": now,
            "lease_until": now + timedelta(seconds=lease),
            "max_attempts": max_attempts,
            "outbox": "",
        },
        inc={"attempts": 1},
    )


def resume(run_id: str, now: datetime, lease: float) -> Step:
    """Continue a run (a poll of its provider job): renew its lease, clear the outbox stamp."""
    return _step(
        "resume",
        _only("running", run_id=run_id),
        "running",
        {"lease_until": now + timedelta(seconds=lease), "updated_at": now, "outbox": ""},
    )


def record_job(
    run_id: str, job_id: str, now: datetime, lease: float, poll_after: float, sealed: str = ""
) -> Step:
    """Store the provider job id (before any waiting) and schedule the first poll."""
    return _step(
        "record_job",
        _only("running", run_id=run_id),
        "running",
        {
            "provider_job_id": job_id,
            "lease_until": now + timedelta(seconds=lease),
            "updated_at": now,
        },
        publish=Publish(MessageKind.POLL, poll_after, run_id, sealed),
    )


def heartbeat(
    run_id: str, now: datetime, lease: float, poll_after: float | None, sealed: str = ""
) -> Step:
    """Renew the run's lease; with ``poll_after``, schedule the next poll of its job."""
    publish = None
    if poll_after is not None:
        publish = Publish(MessageKind.POLL, poll_after, run_id, sealed)
    return _step(
        "heartbeat",
        _only("running", run_id=run_id),
        "running",
        {"lease_until": now + timedelta(seconds=lease), "updated_at": now},
        publish=publish,
    )


def complete(run_id: str, result: Document, usage: Document, now: datetime) -> Step:
    """Finish the run with its output."""
    return _step(
        "complete",
        _only("running", run_id=run_id),
        "succeeded",
        _ended(now, result=result, usage=usage, error=None),
    )


def schedule_retry(
    run_id: str, error: Document, delay: float, new_job: bool, now: datetime, sealed: str = ""
) -> Step:
    """Hand the task back to the queue after ``delay`` seconds; ``new_job`` forgets a failed
    provider job so the next run submits a new one."""
    fields: dict[str, Any] = {
        "run_id": "",
        "lease_until": None,
        "error": error,
        "updated_at": now,
    }
    if new_job:
        fields["provider_job_id"] = ""
    return _step(
        "schedule_retry",
        _only("running", run_id=run_id),
        "queued",
        fields,
        publish=Publish(MessageKind.RUN, delay, sealed_credentials=sealed),
    )


def fail(run_id: str, error: Document, now: datetime) -> Step:
    """End the run in failure."""
    return _step("fail", _only("running", run_id=run_id), "failed", _ended(now, error=error))


def fail_lost(run_id: str, error: Document, now: datetime) -> Step:
    """Fail a run whose lease lapsed once its attempts are used up (its workers kept dying)."""
    return _step(
        "fail_lost",
        _only("running", run_id=run_id, lease_lapsed_at=now),
        "failed",
        _ended(now, error=error),
    )


def requeue_lost(run_id: str, error: Document, now: datetime) -> Step:
    """Hand back a run whose lease lapsed (its worker vanished without a redelivery). The
    provider job id is kept: the next run polls that job instead of paying for a new one."""
    return _step(
        "requeue_lost",
        _only("running", run_id=run_id, lease_lapsed_at=now),
        "queued",
        {"run_id": "", "lease_until": None, "error": error, "updated_at": now},
        publish=Publish(MessageKind.RUN),
    )


def republish(status: str, untouched_since: datetime, now: datetime) -> Step:
    """Publish again a task waiting so long its message may be lost (a duplicate is harmless:
    one claim wins); stamps ``updated_at`` so the next pass leaves it alone."""
    return _step(
        "republish",
        _only(status, untouched_since=untouched_since),
        "queued",
        {"updated_at": now},
        publish=Publish(MessageKind.RUN),
    )


def cancel(now: datetime) -> Step:
    """Cancel an unfinished task. A provider job it started is cancelled by the worker that
    next sees it (the job's poll message is skipped as cancelled)."""
    return _step("cancel", _only(*ACTIVE), "cancelled", _ended(now))


def retry(now: datetime) -> Step:
    """Run a failed task again with a fresh attempt budget (an operator's decision), from the
    requested provider and model again (a fallback that served it is forgotten)."""
    return _step(
        "retry",
        _only("failed"),
        "queued",
        {
            "served_by": None,
            "attempts": 0,
            "run_id": "",
            "lease_until": None,
            "provider_job_id": "",
            "finished_at": None,
            "updated_at": now,
        },
        publish=Publish(MessageKind.RUN),
    )


def expire(now: datetime) -> Step:
    """Mark a succeeded task's results as purged (its stored media deleted for age). The result
    keeps its references (sizes, checksums) as a record; no URL is handed out for them again."""
    return _step("expire", _only("succeeded"), "expired", {"updated_at": now})


def reroute(run_id: str, provider: str, model: str, error: Document, now: datetime) -> Step:
    """End the run and queue the task for one of its fallbacks (its provider's circuit breaker
    is open): it is served by ``provider``/``model`` from now on, with a fresh attempt budget.
    Bounded: the target must be one of the task's fallbacks (``Lifecycle.reroute`` checks; a
    task's fallbacks never change after it is created, so that check needs no guard), and
    workers only move a task forward through that list. The worker re-routes before submitting
    anything, so no provider job is left behind (``provider_job_id`` is cleared all the same).
    """
    return _step(
        "reroute",
        _only("running", run_id=run_id),
        "queued",
        {
            "served_by": {"provider": provider, "model": model},
            "attempts": 0,
            "run_id": "",
            "lease_until": None,
            "provider_job_id": "",
            "error": error,
            "updated_at": now,
        },
        publish=Publish(MessageKind.RUN),
    )
