"""The MLflow model registry side of pushing: versions, tags, the alias lock, alias moves, promote, rollback.

Why a lock: the push gate is compare-and-move. It reads `@champion`, compares, then moves the alias.
Two pushes doing that at once can both compare against the same old champion and the slower one
then moves `@champion` onto the worse model. MLflow has no compare-and-swap, so the alias moves go
through `AliasLock`, and the pusher re-reads `@champion` inside the lock and only moves it when it is
still the version it compared against (otherwise it compares again with the new champion).

How the lock works (Fischer's timed mutual exclusion, on a registered-model tag):
1. read the tag `cityseg.alias_lock`; if another owner holds it and it has not expired, wait;
2. write our token (owner + nonce + expiry), and check that read-to-write took < `max_write_s`;
3. wait `settle_s` (> `max_write_s`), then read the tag again: still our token means we hold it.
Any contender that read the tag as free before our write must have written within `max_write_s`,
so before our second read; it overwrote us, and we see its token and back off. Only the last
writer enters. A contender whose own read-to-write was too slow cannot know whether it clobbered a
holder, so it never enters on that attempt and waits for its stale token to expire.
Assumptions, stated: holders leave within `ttl_s` (the critical section is a handful of registry
calls) and machine clocks agree to well within `ttl_s`, since expiry is wall-clock time.
"""

import contextlib
import dataclasses
import datetime
import getpass
import json
import logging
import os
import random
import socket
import time
import uuid

import mlflow
from mlflow.exceptions import MlflowException

from cityseg.components import tracking

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous"
LOCK_TAG = "cityseg.alias_lock"
LAST_CHANGE_TAG = "cityseg.last_alias_change"


class LockTimeoutError(TimeoutError):
    """The alias lock stayed held by someone else for longer than we were willing to wait."""


class LockLostError(RuntimeError):
    """Our alias lock expired or was taken over before the alias move."""


def _client() -> mlflow.MlflowClient:
    return mlflow.MlflowClient()


def _missing(err: MlflowException) -> bool:
    return err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def get_registered_model(name: str):
    """The registered model `name`.

    Raises:
        ValueError: no registered model has that name.
    """
    try:
        return _client().get_registered_model(name)
    except MlflowException as err:
        if _missing(err):
            raise ValueError(
                f"registered model {name!r} does not exist in {mlflow.get_registry_uri()}"
            ) from err
        raise


def check_version(name: str, version: str | int) -> str:
    """`version` as a string, after checking that `name` has it.

    Raises:
        ValueError: the registered model or the version does not exist (the message lists the versions).
    """
    get_registered_model(name)
    try:
        return str(_client().get_model_version(name, str(version)).version)
    except MlflowException as err:
        if not _missing(err):
            raise
        versions = sorted(int(v.version) for v in _client().search_model_versions(f"name = '{name}'"))
        known = ", ".join(map(str, versions)) or "none"
        raise ValueError(f"registered model {name!r} has no version {version} (versions: {known})") from err


def ensure_registered_model(name: str) -> None:
    """Create the registered model unless it exists (a concurrent creator winning is fine)."""
    client = _client()
    try:
        client.get_registered_model(name)
        return
    except MlflowException as err:
        if not _missing(err):
            raise
    try:
        client.create_registered_model(name, description="cityseg street-scene segmentation models")
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def register_version(name: str, run_id: str, tags: dict[str, str], artifact_path: str = "model") -> str:
    """Register the run's logged model as a new version of `name`; returns the version."""
    ensure_registered_model(name)
    source, model_id = tracking.logged_model(run_id, artifact_path)
    version = _client().create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)
    return str(version.version)


def set_version_tags(name: str, version: str, tags: dict[str, object]) -> None:
    """Set tags on one version; values are stored as strings (JSON for non-strings)."""
    client = _client()
    for key, value in tags.items():
        text = value if isinstance(value, str) else json.dumps(value)
        client.set_model_version_tag(name, version, key, text)


def version_tags(name: str, version: str) -> dict[str, str]:
    """The tags of one version."""
    return dict(_client().get_model_version(name, version).tags)


def aliases(name: str) -> dict[str, str]:
    """Alias -> version (as strings) of the registered model."""
    return {alias: str(version) for alias, version in get_registered_model(name).aliases.items()}


def alias_version(name: str, alias: str) -> str | None:
    """The version an alias points at, or None."""
    return aliases(name).get(alias)


def move_aliases(name: str, champion: str, previous: str | None, *, lock: "AliasLock", record: dict) -> None:
    """Point `@champion` (and `@previous`, or drop it when None) at the given versions, under `lock`.

    `record` (who, why, what) is kept as the registered model's last-change tag.

    Raises:
        LockLostError: the lock is no longer ours, so moving now could race another push.
    """
    lock.check()
    client = _client()
    if previous is None:
        with contextlib.suppress(MlflowException):
            client.delete_registered_model_alias(name, PREVIOUS)
    else:
        client.set_registered_model_alias(name, PREVIOUS, previous)
    client.set_registered_model_alias(name, CHAMPION, champion)
    client.set_registered_model_tag(name, LAST_CHANGE_TAG, json.dumps(record, sort_keys=True))


def current_user() -> str:
    """Who is acting: CITYSEG_USER, else the login name."""
    return os.environ.get("CITYSEG_USER") or getpass.getuser()


@dataclasses.dataclass
class AliasLock:
    """A lease on the registered model's alias moves (see the module docstring for the protocol)."""

    name: str
    ttl_s: float = 30.0
    settle_s: float = 1.5
    max_write_s: float = 1.0
    timeout_s: float = 300.0
    poll_s: float = 0.3
    token: dict | None = None

    def _read(self) -> dict | None:
        value = _client().get_registered_model(self.name).tags.get(LOCK_TAG)
        if not value:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            log.warning("ignoring malformed lock tag on %s: %r", self.name, value)
            return None

    def acquire(self) -> None:
        """Block until the lock is ours.

        Raises:
            LockTimeoutError: not acquired within `timeout_s`.
        """
        client = _client()
        deadline = time.monotonic() + self.timeout_s
        owner = f"{socket.gethostname()}:{os.getpid()}:{current_user()}"
        announced = False
        while time.monotonic() < deadline:
            started = time.monotonic()
            held = self._read()
            if held and held.get("expires", 0) > time.time():
                if not announced:
                    log.info("waiting for the alias lock on %s, held by %s", self.name, held.get("owner"))
                    announced = True
                time.sleep(self.poll_s * (1 + random.random()))
                continue
            token = {"owner": owner, "nonce": uuid.uuid4().hex, "expires": time.time() + self.ttl_s}
            try:
                client.set_registered_model_tag(self.name, LOCK_TAG, json.dumps(token, sort_keys=True))
            except MlflowException:
                # Two writers creating the tag at once: the store keeps one and refuses the other.
                # Losing that race is waiting for the winner; any other failure is raised.
                if self._read() is None:
                    raise
                continue
            if time.monotonic() - started > self.max_write_s:
                # Too slow to trust: we may have overwritten a holder. Never enter on this attempt;
                # our token now blocks everyone, us included, until it expires.
                log.info("alias lock write on %s was slow; retrying after its expiry", self.name)
                continue
            time.sleep(self.settle_s)
            if self._read() == token:
                self.token = token
                return
        raise LockTimeoutError(f"could not take the alias lock of {self.name!r} within {self.timeout_s:.0f}s")

    def check(self) -> None:
        """Raise LockLostError unless the lock is still ours with time to spare."""
        held = self._read()
        if self.token is None or held != self.token or held["expires"] - time.time() < self.ttl_s / 4:
            raise LockLostError(f"the alias lock of {self.name!r} is no longer held by this process")

    def release(self) -> None:
        """Drop the lock if it is still ours."""
        if self.token is not None and self._read() == self.token:
            _client().delete_registered_model_tag(self.name, LOCK_TAG)
        self.token = None

    def __enter__(self) -> "AliasLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def change_record(action: str, champion: str, previous: str | None, reason: str, user: str) -> dict:
    """Who moved `@champion` and `@previous` where, why and when: the registered model's last-change tag."""
    return dict(action=action, champion=champion, previous=previous, reason=reason, user=user, at=_now())


def promote(name: str, version: str | int, *, reason: str, user: str | None = None) -> dict[str, str]:
    """Make `version` the champion by hand; the old champion becomes `@previous`.

    Returns:
        The aliases afterwards.

    Raises:
        ValueError: unknown registered model or version, or no reason given.
    """
    if not reason.strip():
        raise ValueError("a promotion needs a reason")
    version = check_version(name, version)
    user = user or current_user()
    with AliasLock(name) as lock:
        champion = alias_version(name, CHAMPION)
        if champion == version:
            log.info("%s v%s is already the champion", name, version)
            return aliases(name)
        record = change_record("promote", version, champion, reason, user)
        move_aliases(name, version, champion, lock=lock, record=record)
    set_version_tags(
        name, version, {"promoted_by": user, "promote_reason": reason, "promoted_at": record["at"]}
    )
    return aliases(name)


def rollback(name: str, *, reason: str, user: str | None = None) -> dict[str, str]:
    """Put `@champion` back on `@previous`; the demoted version becomes `@previous` (rollback twice = undo).

    Returns:
        The aliases afterwards.

    Raises:
        ValueError: unknown registered model, no reason, or no `@previous` to go back to.
    """
    if not reason.strip():
        raise ValueError("a rollback needs a reason")
    get_registered_model(name)
    user = user or current_user()
    with AliasLock(name) as lock:
        current = aliases(name)
        champion, previous = current.get(CHAMPION), current.get(PREVIOUS)
        if previous is None:
            raise ValueError(f"registered model {name!r} has no @previous version to roll back to")
        record = change_record("rollback", previous, champion, reason, user)
        move_aliases(name, previous, champion, lock=lock, record=record)
    if champion is not None:
        tags = {"rolled_back_by": user, "rollback_reason": reason, "rolled_back_at": record["at"]}
        set_version_tags(name, champion, tags)
    return aliases(name)
