"""Turns a batch of `SegmentChange` into Klaviyo calls and says which changes must be retried.

Trickle (fewer than `bulk_threshold` changes):
  1. one POST /api/profile-import per profile (its answer gives the Klaviyo profile id);
  2. one POST /api/events per entered/exited segment;
  3. list additions/removals, batched per list in calls of at most 1,000 profile ids.
Flood:
  1. profiles whose list removals need a Klaviyo id we do not have are resolved by external id
     (GET /api/profiles, 50 per call); those still unknown go through a single profile-import;
  2. everyone else goes in bulk profile import jobs (10,000 profiles / 5 MB each), grouped by the
     lists they join, which the job's list relationship adds them to;
  3. each job is followed until Klaviyo ends it (see "Following bulk jobs" below);
  4. bulk event jobs of at most 1,000 events, for the profiles Klaviyo imported;
  5. list calls as in a trickle for what the jobs did not cover.

Following bulk jobs: a 202 only means Klaviyo accepted a job. Each job is polled (at once, then after 0.5 s
doubling to 5 s) until it is complete or cancelled, within the caller's time (`time_left_s`) or
`JobFollow.max_wait_s`. A cancelled job, or one still running when time is up, fails every change it carried
(retried: the import is an upsert). A complete job's import errors are mapped back to their profiles: a
permanent one (an invalid value) is poison with Klaviyo's code and field, anything else is retried. So a change
counts as pushed only once Klaviyo has imported it.

Failures are per call: only the changes a failed call carried are reported, and everything is
idempotent on retry (profile upserts, events keyed by `unique_id`, list membership). Each failed change
also says whether retrying can help: a 4xx Klaviyo refused is `poison`; a 429 carries Klaviyo's
`Retry-After` in `retry_after_s`.

Erasure (a redacted customer): unset Evergreen's profile properties, leave the segments' lists, and,
when asked, request Klaviyo's own data-privacy deletion. No entered/exited events: an erased person must
not trigger flows.
Several versions of one profile in a batch are upserted once, from the newest snapshot.

List move (a segment mapped to another list): members join the new list through bulk import jobs that carry
only their external ids, and leave the old lists through list calls (Klaviyo ids looked up where unknown).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from evergreen.domain.changes import ProfileErasure, SegmentChange
from evergreen.domain.list_moves import MemberListChange
from evergreen.klaviyo import jobs as kj
from evergreen.klaviyo import requests as kr
from evergreen.klaviyo.errors import KlaviyoError, KlaviyoRejected, KlaviyoThrottled, KlaviyoUnavailable
from evergreen.klaviyo.job_follower import Charge, FollowCounts, FollowedJob, JobFollower

if TYPE_CHECKING:
    import httpx


BULK_THRESHOLD = 10
"""A push of this many changes or more goes as bulk jobs. Measured (bench/bench_bulk_threshold.py, the sandbox at
p50 200 ms / p99 1 s): a per-change push of 10 takes about twice a bulk one (32 requests against 4), and only a
push of 1 is faster per change. Below it, a batch that is not full (the event source's BatchSize is 10) goes per
change and at once, each change applied when Klaviyo answers; a full batch means a backlog, drained and sent as
bulk jobs, which also keeps a burst inside profile-import's 750 a minute per account."""


class KlaviyoSender(Protocol):
    def send(self, request: kr.KlaviyoRequest) -> httpx.Response: ...


class Fanout(Protocol):
    """Runs `work` on every item, possibly at once, and returns the results in the items' order."""

    def __call__[T, R](self, work: Callable[[T], R], items: Sequence[T]) -> list[R]: ...


def one_at_a_time[T, R](work: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """The sequential `Fanout`."""
    return [work(item) for item in items]


@dataclass
class PushResult:
    """What a push did. `failed` holds indexes into the pushed changes that must be retried."""

    mode: Literal["trickle", "flood"] = "trickle"
    failed: set[int] = field(default_factory=set)
    klaviyo_profile_ids: dict[int, str] = field(default_factory=dict)
    """Klaviyo profile ids learned in this push (profile-import answers, lookups) per change index,
    reported even for a change that failed later on: the id itself is a fact worth keeping."""
    errors: dict[int, str] = field(default_factory=dict)
    """Why each failed change failed: operation and status, never PII."""
    profiles_upserted: int = 0
    bulk_profile_jobs: int = 0
    events_sent: int = 0
    bulk_event_jobs: int = 0
    list_additions: int = 0
    list_removals: int = 0
    requests: int = 0
    gave_up: set[str] = field(default_factory=set)
    """Operations abandoned for the rest of this push after retries ran out on a 429 or a 5xx, so a
    Klaviyo outage costs one exhausted call per endpoint rather than one per change."""
    poison: set[int] = field(default_factory=set)
    """Failed changes Klaviyo refused with a 4xx: retrying the same message cannot help."""
    retry_after_s: dict[int, float] = field(default_factory=dict)
    """Failed changes that met a 429, with the longest `Retry-After` Klaviyo gave."""
    job_waits_s: dict[int, float] = field(default_factory=dict)
    """Changes imported by a bulk job: seconds from the job's acceptance to its completion being seen."""
    jobs_followed: int = 0
    """Bulk import jobs followed to their end (complete or cancelled)."""
    jobs_unfinished: int = 0
    """Bulk import jobs still running when the push had to stop: their changes are retried."""
    profiles_refused: int = 0
    """Profiles a complete job refused for good (an invalid value): their changes are poison."""
    phones_left_out: int = 0
    """Profiles sent without their phone because Klaviyo would refuse the number."""
    _gave_up_errors: dict[str, KlaviyoError] = field(default_factory=dict, repr=False)

    def note_failure(self, index: int, error: KlaviyoError | str, *, poison: bool = False) -> None:
        """Record why change `index` failed (the first reason wins) and whether a retry can help."""
        self.failed.add(index)
        if isinstance(error, str):
            self.errors.setdefault(index, error)
            if poison:
                self.poison.add(index)
            return
        status = error.status if error.status is not None else type(error).__name__
        self.errors.setdefault(index, f"{error.operation}: {status}")
        if isinstance(error, KlaviyoRejected):
            self.poison.add(index)
        elif isinstance(error, KlaviyoThrottled) and error.retry_after_s is not None:
            self.retry_after_s[index] = max(self.retry_after_s.get(index, 0.0), error.retry_after_s)


@dataclass
class EraseResult:
    """What an erasure did; `failed` means the whole erasure must be retried (every step is idempotent)."""

    failed: bool = False
    poison: bool = False
    retry_after_s: float | None = None
    error: str | None = None
    profiles_cleared: int = 0
    list_removals: int = 0
    deletions_requested: int = 0
    requests: int = 0


@dataclass
class _Profile:
    """All changes of one profile in the batch; `rep` is the newest, whose snapshot is upserted."""

    external_id: str
    indexes: list[int]
    rep: int
    list_adds: set[str] = field(default_factory=set)
    list_removes: set[str] = field(default_factory=set)
    klaviyo_id: str | None = None
    learned_id: bool = False
    failed: bool = False


class KlaviyoPusher:
    """Pushes segment changes to Klaviyo through a `KlaviyoSender` (normally `KlaviyoClient`)."""

    def __init__(
        self,
        client: KlaviyoSender,
        list_ids: Mapping[str, str],
        bulk_threshold: int = BULK_THRESHOLD,
        *,
        reconcile_lists: bool = False,
        fanout: Fanout = one_at_a_time,
        job_follow: kj.JobFollow | None = None,
    ) -> None:
        """`list_ids` maps segment name to Klaviyo list id. By default only lists whose segment a change
        entered or exited are touched; `reconcile_lists` sets every mapped list from the snapshot instead
        (repairs drift, e.g. after a superseded version was skipped, at up to 2 list calls per list).
        `fanout` runs a trickle's per-change calls (profile imports, events, list calls), at once when it is
        concurrent: a batch then costs about one call's latency per step instead of one per change.
        `job_follow` paces the polling of bulk jobs (the system's monotonic clock and sleep by default).
        """
        if bulk_threshold < 1:
            raise ValueError("bulk_threshold must be at least 1")
        self._fanout = fanout
        self._lock = threading.Lock()
        """Guards the push's bookkeeping, which concurrent calls share."""
        self._client = client
        self._list_ids = dict(list_ids)
        self._bulk_threshold = bulk_threshold
        self._reconcile_lists = reconcile_lists
        self._follow = job_follow or kj.JobFollow(clock=time.monotonic, sleep=time.sleep)

    def push(self, changes: Sequence[SegmentChange], *, time_left_s: Callable[[], float] | None = None) -> PushResult:
        """Push a batch; `time_left_s` bounds how long bulk jobs are followed (else `JobFollow.max_wait_s`)."""
        result = PushResult(mode="flood" if len(changes) >= self._bulk_threshold else "trickle")
        if not changes:
            return result
        profiles = self._profiles(changes)
        result.phones_left_out = sum(1 for p in profiles if kr.phone_left_out(changes[p.rep].phone))
        if result.mode == "trickle":
            self._import_singly(profiles, changes, result)
            self._send_events_singly(profiles, changes, result)
            self._update_lists(profiles, result, adds_done_by_jobs=set())
        else:
            needs_id = [p for p in profiles if p.list_removes and p.klaviyo_id is None]
            self._look_up_ids(needs_id, changes, result)
            singles = [p for p in needs_id if p.klaviyo_id is None and not p.failed]
            single_ids = {id(p) for p in singles}
            bulk = [p for p in profiles if id(p) not in single_ids]
            self._import_singly(singles, changes, result)
            follower = self._follower(result)
            jobs = self._import_in_bulk(bulk, changes, result, follower)
            self._count_followed(follower.follow(jobs, time_left_s), result)
            self._send_events_in_bulk(profiles, changes, result)
            self._update_lists(profiles, result, adds_done_by_jobs={id(p) for p in bulk})
        for profile in profiles:
            if profile.learned_id and profile.klaviyo_id:
                for index in profile.indexes:
                    result.klaviyo_profile_ids[index] = profile.klaviyo_id
        return result

    # --- planning -------------------------------------------------------------------------------

    def _profiles(self, changes: Sequence[SegmentChange]) -> list[_Profile]:
        by_external_id: dict[str, list[int]] = defaultdict(list)
        for index, change in enumerate(changes):
            by_external_id[change.external_id].append(index)
        profiles: list[_Profile] = []
        for external_id, indexes in by_external_id.items():
            rep = max(indexes, key=lambda i: (changes[i].version, i))
            profile = _Profile(external_id=external_id, indexes=indexes, rep=rep)
            profile.klaviyo_id = next(
                (changes[i].klaviyo_profile_id for i in sorted(indexes, reverse=True) if changes[i].klaviyo_profile_id),
                None,
            )
            self._plan_lists(profile, changes)
            profiles.append(profile)
        return profiles

    def _plan_lists(self, profile: _Profile, changes: Sequence[SegmentChange]) -> None:
        """Lists whose membership this batch touched (or all, reconciling), set to the newest snapshot's."""
        if self._reconcile_lists or any(changes[index].reconcile_lists for index in profile.indexes):
            touched = set(self._list_ids)
        else:
            touched = {
                segment
                for index in profile.indexes
                for segment in (*changes[index].entered, *changes[index].exited)
                if segment in self._list_ids
            }
        current = set(changes[profile.rep].segments)
        for list_id in {self._list_ids[segment] for segment in touched}:
            member = any(self._list_ids.get(segment) == list_id for segment in current)
            (profile.list_adds if member else profile.list_removes).add(list_id)

    # --- calls ----------------------------------------------------------------------------------

    def _follower(self, result: PushResult) -> JobFollower:
        """Follows this push's bulk jobs, its reads counted and given up like every other call of the push."""
        return JobFollower(lambda request: self._send(request, result), self._follow)

    @staticmethod
    def _count_followed(counts: FollowCounts, result: PushResult) -> None:
        result.jobs_followed += counts.followed
        result.jobs_unfinished += counts.unfinished

    def _send(self, request: kr.KlaviyoRequest, result: PushResult) -> httpx.Response:
        """Send, unless Klaviyo already kept refusing this operation in this push (then fail fast)."""
        with self._lock:
            if request.operation in result.gave_up:
                earlier = result._gave_up_errors.get(request.operation)
                if isinstance(earlier, KlaviyoUnavailable):
                    raise KlaviyoUnavailable(str(earlier), operation=request.operation, status=earlier.status)
                retry_after = earlier.retry_after_s if isinstance(earlier, KlaviyoThrottled) else None
                raise KlaviyoThrottled(operation=request.operation, retry_after_s=retry_after)
            result.requests += 1
        try:
            return self._client.send(request)
        except (KlaviyoThrottled, KlaviyoUnavailable) as error:
            with self._lock:
                result.gave_up.add(request.operation)
                result._gave_up_errors[request.operation] = error
            raise

    def _attempt(self, request: kr.KlaviyoRequest, result: PushResult) -> KlaviyoError | None:
        """Send; the error instead of raising it (for calls made at once, whose failures are charged after)."""
        try:
            self._send(request, result)
        except KlaviyoError as error:
            return error
        return None

    @staticmethod
    def _fail(
        profiles: Iterable[_Profile], error: KlaviyoError | str, result: PushResult, *, poison: bool = False
    ) -> None:
        for profile in profiles:
            profile.failed = True
            for index in profile.indexes:
                result.note_failure(index, error, poison=poison)

    @staticmethod
    def _fail_change(index: int, error: KlaviyoError, result: PushResult) -> None:
        result.note_failure(index, error)

    # --- erasure --------------------------------------------------------------------------------

    def erase(self, erasure: ProfileErasure, *, delete_in_klaviyo: bool = False) -> EraseResult:
        """Clear in Klaviyo what Evergreen wrote for a redacted customer; idempotent, so safe to retry.

        Profiles Klaviyo does not know (never synced, or already deleted there) need nothing.
        """
        outcome = EraseResult()
        calls = PushResult()
        try:
            targets = self._erasure_targets(erasure, calls)
            for external_id, klaviyo_id in targets:
                if self._send_unless_gone(kr.unset_evergreen_properties(external_id, klaviyo_id), calls):
                    outcome.profiles_cleared += 1
            ids = list(dict.fromkeys(klaviyo_id for _, klaviyo_id in targets))
            list_ids = sorted({self._list_ids[s] for s in erasure.segments if s in self._list_ids})
            for list_id in list_ids if ids else []:
                for chunk in kr.pack(ids, max_count=kr.MAX_LIST_PROFILES):
                    if self._send_unless_gone(kr.remove_profiles_from_list(list_id, chunk), calls):
                        outcome.list_removals += len(chunk)
            for klaviyo_id in ids if delete_in_klaviyo else []:
                self._send(kr.request_profile_deletion(klaviyo_id), calls)
                outcome.deletions_requested += 1
        except KlaviyoError as error:
            calls.note_failure(0, error)
            outcome.failed = True
            outcome.poison = bool(calls.poison)
            outcome.retry_after_s = calls.retry_after_s.get(0)
            outcome.error = calls.errors.get(0)
        outcome.requests = calls.requests
        return outcome

    # --- list moves ---------------------------------------------------------------------------

    @property
    def list_ids(self) -> Mapping[str, str]:
        """Segment name -> Klaviyo list id, as deployed."""
        return self._list_ids

    def move_lists(
        self, changes: Sequence[MemberListChange], *, time_left_s: Callable[[], float] | None = None
    ) -> PushResult:
        """Members join a moved segment's new list and leave its old ones; a failure fails the member's message.

        Joining rides on bulk import jobs by external id (10,000 per job, no Klaviyo id needed, identifiers
        only); leaving takes Klaviyo ids (1,000 per call), looked up by external id where unknown. A member
        Klaviyo does not know, or a list that no longer exists, has nothing to leave. Idempotent, so a failed
        message is retried whole.
        """
        result = PushResult(mode="flood")
        ids = self._known_ids([change for change in changes if change.leave], result)
        joins: dict[str, list[MemberListChange]] = defaultdict(list)
        leaves: dict[str, list[MemberListChange]] = defaultdict(list)
        for change in changes:
            if change.join is not None:
                joins[change.join].append(change)
            for list_id in change.leave if change.external_id in ids else ():
                leaves[list_id].append(change)
        follower = self._follower(result)
        fills: list[FollowedJob] = []
        for list_id, members in sorted(joins.items()):
            for chunk in kr.pack(members, max_count=kr.MAX_BULK_PROFILES):
                external_ids = list(dict.fromkeys(member.external_id for member in chunk))
                try:
                    response = self._send(kr.list_fill_import(list_id, external_ids), result)
                except KlaviyoError as error:
                    for member in chunk:
                        result.note_failure(member.message, error)
                    continue
                fill = follower.accepted(response, external_ids, _charge_members(chunk, result))
                if fill is None:
                    for member in chunk:
                        result.note_failure(member.message, f"{kr.OP_BULK_PROFILES}: no job id")
                    continue
                fill.imported = _count_joined(chunk, result)
                fills.append(fill)
        self._count_followed(follower.follow(fills, time_left_s), result)
        for list_id, members in sorted(leaves.items()):
            for chunk in kr.pack(members, max_count=kr.MAX_LIST_PROFILES):
                request = kr.remove_profiles_from_list(list_id, [ids[member.external_id] for member in chunk])
                if self._charged(chunk, request, result, gone_is_done=True):
                    result.list_removals += len(chunk)
        return result

    def _known_ids(self, changes: Sequence[MemberListChange], result: PushResult) -> dict[str, str]:
        """Klaviyo id by external id: carried, else looked up (a failed lookup fails its members' messages)."""
        ids = {change.external_id: change.klaviyo_profile_id for change in changes if change.klaviyo_profile_id}
        unknown = [c for c in changes if c.external_id not in ids and kr.filterable_external_id(c.external_id)]
        for chunk in kr.pack(unknown, max_count=kr.MAX_PROFILE_LOOKUP):
            external_ids = list(dict.fromkeys(change.external_id for change in chunk))
            try:
                ids.update(_ids_by_external_id(self._send(kr.profile_lookup(external_ids), result)))
            except KlaviyoError as error:
                for change in chunk:
                    result.note_failure(change.message, error)
        return ids

    def _charged(
        self, members: Sequence[MemberListChange], request: kr.KlaviyoRequest, result: PushResult, *, gone_is_done: bool
    ) -> bool:
        """Send; False when it failed (charged to the members' messages) or, if `gone_is_done`, answered 404
        (a list or profile that no longer exists: nothing to remove)."""
        try:
            if gone_is_done:
                return self._send_unless_gone(request, result)
            self._send(request, result)
        except KlaviyoError as error:
            for member in members:
                result.note_failure(member.message, error)
            return False
        return True

    def _erasure_targets(self, erasure: ProfileErasure, calls: PushResult) -> list[tuple[str, str]]:
        """(external id, Klaviyo id) of each erased profile Klaviyo knows, looking up the ids not carried."""
        known = {p.external_id: p.klaviyo_profile_id for p in erasure.profiles if p.klaviyo_profile_id}
        unknown = [
            p.external_id
            for p in erasure.profiles
            if p.external_id not in known and kr.filterable_external_id(p.external_id)
        ]
        for chunk in kr.pack(list(dict.fromkeys(unknown)), max_count=kr.MAX_PROFILE_LOOKUP):
            known.update(_ids_by_external_id(self._send(kr.profile_lookup(chunk), calls)))
        return [(external_id, klaviyo_id) for external_id, klaviyo_id in known.items() if klaviyo_id]

    def _send_unless_gone(self, request: kr.KlaviyoRequest, calls: PushResult) -> bool:
        """Send; a 404 (the profile or list no longer exists in Klaviyo) means there is nothing to clear."""
        try:
            self._send(request, calls)
        except KlaviyoRejected as error:
            if error.status == 404:
                return False
            raise
        return True

    def _import_one(self, change: SegmentChange, result: PushResult) -> httpx.Response | KlaviyoError:
        """One profile-import (two after a 409 naming the profile that already has the email or phone)."""
        try:
            try:
                return self._send(kr.profile_import(change), result)
            except KlaviyoRejected as error:
                duplicate = _duplicate_profile_id(error)
                if duplicate is None:
                    raise
                # 409: the email or phone already belongs to another Klaviyo profile; update that one.
                return self._send(kr.profile_import(change, duplicate), result)
        except KlaviyoError as error:
            return error

    def _import_singly(
        self, profiles: Sequence[_Profile], changes: Sequence[SegmentChange], result: PushResult
    ) -> None:
        answers = self._fanout(lambda profile: self._import_one(changes[profile.rep], result), profiles)
        for profile, response in zip(profiles, answers, strict=True):
            if isinstance(response, KlaviyoError):
                self._fail([profile], response, result)
                continue
            result.profiles_upserted += 1
            klaviyo_id = _profile_id(response)
            if klaviyo_id:
                profile.klaviyo_id = klaviyo_id
                profile.learned_id = True

    def _look_up_ids(self, profiles: Sequence[_Profile], changes: Sequence[SegmentChange], result: PushResult) -> None:
        lookable = [p for p in profiles if kr.filterable_external_id(p.external_id)]
        for chunk in kr.pack(lookable, max_count=kr.MAX_PROFILE_LOOKUP):
            try:
                response = self._send(kr.profile_lookup([p.external_id for p in chunk]), result)
            except KlaviyoError:
                continue  # those profiles fall back to a single profile-import
            found = _ids_by_external_id(response)
            for profile in chunk:
                if profile.external_id in found:
                    profile.klaviyo_id = found[profile.external_id]
                    profile.learned_id = True

    def _import_in_bulk(
        self,
        profiles: Sequence[_Profile],
        changes: Sequence[SegmentChange],
        result: PushResult,
        follower: JobFollower,
    ) -> list[FollowedJob]:
        """Submit the bulk import jobs; returns the accepted ones, to follow."""
        accepted: list[FollowedJob] = []
        by_lists: dict[frozenset[str], list[_Profile]] = defaultdict(list)
        for profile in profiles:
            by_lists[frozenset(profile.list_adds)].append(profile)
        for list_ids, group in sorted(by_lists.items(), key=lambda item: sorted(item[0])):
            reps = [changes[p.rep] for p in group]
            for job in kr.plan_bulk_profile_jobs(reps):
                members = [group[i] for i in job]
                try:
                    response = self._send(kr.profile_bulk_import([reps[i] for i in job], list_ids), result)
                except KlaviyoError as error:
                    self._fail(members, error, result)
                    continue
                result.bulk_profile_jobs += 1
                external_ids = [p.external_id for p in members]
                followed = follower.accepted(response, external_ids, self._charge_profiles(members, result))
                if followed is None:
                    self._fail(members, f"{kr.OP_BULK_PROFILES}: no job id", result)
                    continue
                followed.imported = self._record_imported(members, result)
                accepted.append(followed)
        return accepted

    def _charge_profiles(self, members: Sequence[_Profile], result: PushResult) -> Charge:
        def charge(external_ids: set[str], error: KlaviyoError | str, permanent: bool) -> None:
            refused = [p for p in members if p.external_id in external_ids]
            if permanent:
                result.profiles_refused += len(refused)
            self._fail(refused, error, result, poison=permanent)

        return charge

    @staticmethod
    def _record_imported(members: Sequence[_Profile], result: PushResult) -> Callable[[float], None]:
        def imported(waited_s: float) -> None:
            result.profiles_upserted += sum(1 for p in members if not p.failed)
            for profile in members:
                for index in profile.indexes if not profile.failed else ():
                    result.job_waits_s[index] = waited_s

        return imported

    def _events_of(
        self, profiles: Sequence[_Profile], changes: Sequence[SegmentChange]
    ) -> list[tuple[int, kr.ProfileEvents]]:
        """(change index, its events) for every change of a profile that has not failed."""
        entries: list[tuple[int, kr.ProfileEvents]] = []
        for profile in profiles:
            if profile.failed:
                continue
            for index in sorted(profile.indexes):
                events = kr.segment_events(changes[index])
                if events:
                    entries.append((index, kr.ProfileEvents(changes[index], events, profile.klaviyo_id)))
        return entries

    def _send_events_singly(
        self, profiles: Sequence[_Profile], changes: Sequence[SegmentChange], result: PushResult
    ) -> None:
        calls = [
            (index, kr.create_event(entry.change, event, entry.klaviyo_profile_id))
            for index, entry in self._events_of(profiles, changes)
            for event in entry.events
        ]
        errors = self._fanout(lambda call: self._attempt(call[1], result), calls)
        for (index, _), error in zip(calls, errors, strict=True):
            if error is not None:
                self._fail_change(index, error, result)
            else:
                result.events_sent += 1

    def _send_events_in_bulk(
        self, profiles: Sequence[_Profile], changes: Sequence[SegmentChange], result: PushResult
    ) -> None:
        entries = self._events_of(profiles, changes)
        indexes_of: dict[int, list[int]] = defaultdict(list)
        for index, entry in entries:
            indexes_of[id(entry.change)].append(index)
        for job in kr.plan_bulk_event_jobs([entry for _, entry in entries]):
            try:
                self._send(kr.bulk_create_events(job), result)
            except KlaviyoError as error:
                for entry in job:
                    for index in indexes_of[id(entry.change)]:
                        self._fail_change(index, error, result)
                continue
            result.bulk_event_jobs += 1
            result.events_sent += sum(len(entry.events) for entry in job)

    def _update_lists(self, profiles: Sequence[_Profile], result: PushResult, adds_done_by_jobs: set[int]) -> None:
        adds: dict[str, list[_Profile]] = defaultdict(list)
        removes: dict[str, list[_Profile]] = defaultdict(list)
        for profile in profiles:
            if profile.failed:
                continue
            wanted_adds = set() if id(profile) in adds_done_by_jobs else profile.list_adds
            if (wanted_adds or profile.list_removes) and not profile.klaviyo_id:
                self._fail([profile], "lists: no Klaviyo profile id", result)
                continue
            for list_id in wanted_adds:
                adds[list_id].append(profile)
            for list_id in profile.list_removes:
                removes[list_id].append(profile)
        calls: list[tuple[str, list[_Profile], list[str], kr.KlaviyoRequest]] = []
        for direction, plan in (("add", adds), ("remove", removes)):
            for list_id in sorted(plan):
                for chunk in kr.pack(plan[list_id], max_count=kr.MAX_LIST_PROFILES):
                    ids = [p.klaviyo_id for p in chunk if p.klaviyo_id]
                    build = kr.add_profiles_to_list if direction == "add" else kr.remove_profiles_from_list
                    calls.append((direction, chunk, ids, build(list_id, ids)))
        errors = self._fanout(lambda call: self._attempt(call[3], result), calls)
        for (direction, chunk, ids, _), error in zip(calls, errors, strict=True):
            if error is not None:
                self._fail(chunk, error, result)
            elif direction == "add":
                result.list_additions += len(ids)
            else:
                result.list_removals += len(ids)


def _charge_members(members: Sequence[MemberListChange], result: PushResult) -> Charge:
    def charge(external_ids: set[str], error: KlaviyoError | str, permanent: bool) -> None:
        for member in members:
            if member.external_id in external_ids:
                result.note_failure(member.message, error, poison=permanent)

    return charge


def _count_joined(members: Sequence[MemberListChange], result: PushResult) -> Callable[[float], None]:
    def imported(waited_s: float) -> None:
        result.list_additions += sum(1 for member in members if member.message not in result.failed)

    return imported


def _duplicate_profile_id(error: KlaviyoRejected) -> str | None:
    """The existing profile Klaviyo names in a 409 conflict (errors[].meta.duplicate_profile_id)."""
    if error.status != 409:
        return None
    for info in error.errors:
        duplicate = info.meta.get("duplicate_profile_id")
        if isinstance(duplicate, str) and duplicate:
            return duplicate
    return None


def _profile_id(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    klaviyo_id = data.get("id") if isinstance(data, dict) else None
    return klaviyo_id if isinstance(klaviyo_id, str) and klaviyo_id else None


def _ids_by_external_id(response: httpx.Response) -> dict[str, str]:
    try:
        body = response.json()
    except ValueError:
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    found: dict[str, str] = {}
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        attributes = item.get("attributes")
        external_id = attributes.get("external_id") if isinstance(attributes, dict) else None
        klaviyo_id = item.get("id")
        if isinstance(external_id, str) and isinstance(klaviyo_id, str) and klaviyo_id:
            found[external_id] = klaviyo_id
    return found
