"""Follows accepted Klaviyo bulk profile import jobs until Klaviyo ends them, and charges what they did not import.

Each job is polled (at once, then after `JobFollow.first_poll_s` doubling to `poll_cap_s`) until it is complete or
cancelled, within the caller's time (`time_left_s`) or `JobFollow.max_wait_s`. A cancelled job, one still running
when time is up, or one that cannot be read fails every profile it carried (retryable: an import is an upsert). A
complete job's import errors are read and mapped back to their profiles, by the external id in the error's original
payload or else by the position its pointer names: an invalid value is permanent (poison, with Klaviyo's code and
field), anything else is retryable. An error that names no profile of the job fails the whole job, retryably.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evergreen.klaviyo import jobs as kj
from evergreen.klaviyo import requests as kr
from evergreen.klaviyo.errors import KlaviyoError

if TYPE_CHECKING:
    import httpx

Charge = Callable[[set[str], KlaviyoError | str, bool], None]
"""Fail the job's profiles with these external ids for this reason; the flag says the reason is permanent."""


@dataclass
class FollowedJob:
    """An accepted bulk import job, followed until Klaviyo ends it."""

    job_id: str
    external_ids: list[str]
    """The job's profiles by position, as sent."""
    charge: Charge
    accepted_at: float
    imported: Callable[[float], None] = lambda waited_s: None
    """Called once the job is complete (after its refusals were charged), with the seconds since its acceptance."""


@dataclass(frozen=True)
class FollowCounts:
    followed: int = 0
    """Jobs Klaviyo ended (complete or cancelled) while followed."""
    unfinished: int = 0
    """Jobs still running when time was up."""


class JobFollower:
    """Reads jobs back through `send` (the caller's sender, with its rate limits, retries and give-ups)."""

    def __init__(self, send: Callable[[kr.KlaviyoRequest], httpx.Response], follow: kj.JobFollow) -> None:
        self._send = send
        self._follow = follow

    def accepted(self, response: httpx.Response, external_ids: list[str], charge: Charge) -> FollowedJob | None:
        """The job a 202 answer names, to follow; None when it names none."""
        found = kj.job_id(_json(response))
        if found is None or not kr.usable_job_id(found):
            return None
        return FollowedJob(found, external_ids, charge, accepted_at=self._follow.clock())

    def follow(self, jobs: Sequence[FollowedJob], time_left_s: Callable[[], float] | None) -> FollowCounts:
        """Poll each job until Klaviyo ends it or time is up; charge what it refused, or all of a job not ended."""
        follow = self._follow
        deadline = follow.clock() + (follow.max_wait_s if time_left_s is None else max(0.0, time_left_s()))
        pending, ended, wait = list(jobs), 0, follow.first_poll_s
        while pending:
            running: list[FollowedJob] = []
            for job in pending:
                try:
                    status = kj.job_status(_json(self._send(kr.get_profile_import_job(job.job_id))))
                except KlaviyoError as error:
                    job.charge(set(job.external_ids), _not_followed(error), False)
                    continue
                if status is None or status.running:
                    running.append(job)
                    continue
                ended += 1
                self._end(job, status)
            pending = running
            if pending and follow.clock() + wait > deadline:
                for job in pending:
                    job.charge(set(job.external_ids), f"{kr.OP_BULK_PROFILES}: job still running", False)
                return FollowCounts(ended, len(pending))
            if pending:
                follow.sleep(wait)
                wait = min(wait * 2, follow.poll_cap_s)
        return FollowCounts(ended, 0)

    def _end(self, job: FollowedJob, status: kj.JobStatus) -> None:
        """A job Klaviyo ended: cancelled fails all of it; complete fails only the profiles it refused."""
        if not status.complete:
            job.charge(set(job.external_ids), f"{kr.OP_BULK_PROFILES}: job {status.status}", False)
            return
        if status.failed_count:
            try:
                refused = self._refused(job, status.failed_count)
            except KlaviyoError as error:
                job.charge(set(job.external_ids), _not_followed(error), False)
                return
            if refused is None:
                job.charge(set(job.external_ids), f"{kr.OP_GET_IMPORT_ERRORS}: errors not attributable", False)
                return
            for (reason, permanent), external_ids in refused.items():
                job.charge(external_ids, f"{kr.OP_BULK_PROFILES}: {reason}", permanent)
        job.imported(self._follow.clock() - job.accepted_at)

    def _refused(self, job: FollowedJob, failed_count: int) -> dict[tuple[str, bool], set[str]] | None:
        """External ids per (reason, permanent) of what the job refused; None if an error names no profile of it."""
        known = set(job.external_ids)
        refused: dict[tuple[str, bool], set[str]] = defaultdict(set)
        cursor: str | None = None
        for _ in range(failed_count // kr.MAX_IMPORT_ERRORS_PAGE + 2):
            page, cursor = kj.import_errors(_json(self._send(kr.profile_import_errors(job.job_id, cursor))))
            for error in page:
                external_id = error.external_id
                if external_id is None and error.position is not None and error.position < len(job.external_ids):
                    external_id = job.external_ids[error.position]
                if external_id is None or external_id not in known:
                    return None
                refused[(error.reason, error.permanent)].add(external_id)
            if cursor is None:
                break
        return refused


def _not_followed(error: KlaviyoError) -> str:
    """Why a job could not be read: retried (the job itself was accepted, so this is never poison)."""
    return f"{error.operation}: {error.status if error.status is not None else type(error).__name__}"


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None
