"""The alias lock: a lease on a registered model's alias moves, held as a registered-model tag.

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

import dataclasses
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

log = logging.getLogger(__name__)

LOCK_TAG = "cityseg.alias_lock"


class LockTimeoutError(TimeoutError):
    """The alias lock stayed held by someone else for longer than we were willing to wait."""


class LockLostError(RuntimeError):
    """Our alias lock expired or was taken over before the alias move."""


def current_user() -> str:
    """Who is acting: CITYSEG_USER, else the login name."""
    return os.environ.get("CITYSEG_USER") or getpass.getuser()


def _client() -> mlflow.MlflowClient:
    return mlflow.MlflowClient()


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
                # Two writers created the tag at once and the store refused us: wait for the winner.
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
