"""The MLflow model registry side of pushing: versions, tags, the alias lock, alias moves, promote, rollback.

Alias moves happen only under `cityseg.components.push.lock.AliasLock` (why and how: there).
"""

import contextlib
import datetime
import json
import logging

import mlflow
from mlflow.exceptions import MlflowException

from cityseg.components import tracking
from cityseg.components.push.lock import AliasLock, current_user

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous"
LAST_CHANGE_TAG = "cityseg.last_alias_change"


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
