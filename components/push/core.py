"""The blessing gate: register a model and promote it to `@champion` only when it earns it.

TFX's Evaluator/Pusher semantics on MLflow aliases:
- absolute gate: `mean_dice >= min_dice`;
- change gate (when `@champion` exists): the champion is re-scored on the same split of the same
  shards in this run, and `new - champion >= min_improvement`;
- blessed: `@champion` -> new version, `@previous` -> old champion, SavedModel copied to the
  serving folder under `<version>/` with a `PUSHED` marker written last;
- not blessed: aliases untouched, version tagged `blessed=false` with the reason. A refusal is a
  normal outcome, not an error.
The compare-and-move runs under `registry.AliasLock` and re-checks `@champion` before moving it,
so concurrent pushes never leave the champion on the worse model (see `cityseg.components.push.registry`).
"""

import dataclasses
import datetime
import json
import logging
import math
import tempfile
from pathlib import Path

from cityseg.components import storage, tracking
from cityseg.components.push import registry

log = logging.getLogger(__name__)

REQUIRED_METRICS = ("mean_dice", "split")
PUSHED_MARKER = "PUSHED"


@dataclasses.dataclass(frozen=True)
class PushConfig:
    """What to push, the evidence for it, and the gates.

    Attributes:
        model: model folder written by `cityseg train`, or an MLflow `runs:/` / `models:/` URI.
        metrics: metrics.json written by `cityseg evaluate` for this model.
        data: the shards the metrics were computed on; the champion is re-scored on them.
        name: the registered model.
        min_dice: absolute gate on mean_dice.
        min_improvement: change gate: required mean_dice gain over the champion.
        serving_dir: folder or gs:// prefix receiving `<version>/` SavedModels; None skips the copy.
        tracking_uri: MLflow store; None means MLFLOW_TRACKING_URI or the local default.
        kfp_run_id: tagged on the version (KFP_RUN_ID from the environment when None).
        batch_size: batch size for re-scoring the champion.
        cache_dir: where MLflow models are downloaded to.
        max_attempts: how often to compare again when another push moves `@champion` meanwhile.
    """

    model: str
    metrics: str
    data: str
    name: str = "cityseg"
    min_dice: float = 0.0
    min_improvement: float = 0.0
    serving_dir: str | None = None
    tracking_uri: str | None = None
    kfp_run_id: str | None = None
    batch_size: int = 8
    cache_dir: str = "work/model_cache"
    max_attempts: int = 5

    def __post_init__(self):
        if not 0.0 <= self.min_dice <= 1.0:
            raise ValueError(f"min_dice must lie in [0, 1], got {self.min_dice}")
        if not -1.0 <= self.min_improvement <= 1.0:
            raise ValueError(f"min_improvement must lie in [-1, 1], got {self.min_improvement}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")


@dataclasses.dataclass(frozen=True)
class Decision:
    """The gate's verdict and the sentence that explains it."""

    blessed: bool
    reason: str


@dataclasses.dataclass(frozen=True)
class PushResult:
    """Outcome of one push: the verdict, the registered version and the aliases afterwards.

    `aliases` are those the pushed version holds; `model_aliases` maps every alias to its version.
    """

    blessed: bool
    reason: str
    version: str
    aliases: tuple[str, ...]
    model_aliases: dict[str, str]
    mean_dice: float
    champion_version: str | None = None
    champion_mean_dice: float | None = None
    serving_path: str | None = None
    attempts: int = 1


def _dice(value: float | None) -> float:
    # A model that scores no category at all (None) ranks below any model that scores something.
    return 0.0 if value is None else float(value)


def gate(
    mean_dice: float | None,
    min_dice: float,
    min_improvement: float,
    champion_version: str | None = None,
    champion_dice: float | None = None,
) -> Decision:
    """Apply the absolute gate, then (when there is a champion) the change gate."""
    new = _dice(mean_dice)
    if new < min_dice:
        return Decision(False, f"absolute gate: mean_dice {new:.4f} < min_dice {min_dice:.4f}")
    if champion_version is None:
        return Decision(True, f"no champion; mean_dice {new:.4f} >= min_dice {min_dice:.4f}")
    old = _dice(champion_dice)
    gain = new - old
    # Scores are sums of float ratios: a tie must count as a tie, not as -1e-17.
    if gain < min_improvement and not math.isclose(gain, min_improvement, abs_tol=1e-12):
        return Decision(
            False,
            f"change gate: mean_dice {new:.4f} - champion v{champion_version} {old:.4f} = {gain:+.4f} "
            f"< min_improvement {min_improvement:+.4f}",
        )
    return Decision(
        True,
        f"mean_dice {new:.4f} >= min_dice {min_dice:.4f} and beats champion v{champion_version} "
        f"{old:.4f} by {gain:+.4f} >= min_improvement {min_improvement:+.4f}",
    )


def read_metrics(path: str) -> dict:
    """metrics.json written by `cityseg evaluate`, checked for the keys the gate needs.

    Raises:
        ValueError: missing or unreadable file, missing keys, or a mean_dice that is no number.
    """
    try:
        scores = json.loads(storage.read_text(path))
    except FileNotFoundError as err:
        raise ValueError(f"{path}: metrics file not found (write it with `cityseg evaluate`)") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(scores, dict):
        raise ValueError(f"{path}: expected a JSON object of metrics")
    missing = [key for key in REQUIRED_METRICS if key not in scores]
    if missing:
        raise ValueError(
            f"{path}: missing keys {', '.join(missing)} (is this a `cityseg evaluate` metrics.json?)"
        )
    dice = scores["mean_dice"]
    if dice is not None and (
        isinstance(dice, bool) or not isinstance(dice, int | float) or not 0 <= dice <= 1
    ):
        raise ValueError(f"{path}: mean_dice must be a number in [0, 1] or null, got {dice!r}")
    return scores


def _version_tags(scores: dict, manifest_hash: str | None, kfp_run_id: str | None) -> dict[str, str]:
    tags = {
        f"eval_{key}": f"{value:.6g}" if isinstance(value, float) else str(value)
        for key, value in scores.items()
        if value is not None and isinstance(value, int | float) and not isinstance(value, bool)
    }
    tags["eval_split"] = str(scores["split"])
    if manifest_hash:
        tags["data_manifest_hash"] = manifest_hash
    tags.update(tracking.run_tags(kfp_run_id))
    return tags


def _register(config: PushConfig, loaded, tags: dict[str, str]) -> str:
    from cityseg.components.modelstore import parse_mlflow_uri

    if loaded.registered_name == config.name and loaded.version:
        registry.set_version_tags(config.name, loaded.version, tags)
        return loaded.version
    if not loaded.run_id:
        raise ValueError(
            f"{config.model}: no MLflow run is known for this model (train_info.json has no mlflow_run_id); "
            "push a model folder written by `cityseg train` or a runs:/ or models:/ URI"
        )
    artifact_path = "model"
    if config.model.startswith("runs:/"):
        artifact_path = parse_mlflow_uri(config.model).path
    return registry.register_version(config.name, loaded.run_id, tags, artifact_path=artifact_path)


def _score_champion(config: PushConfig, version: str, split: str) -> float | None:
    from cityseg.components.evaluate.core import score
    from cityseg.components.modelstore import load

    log.info("re-scoring champion %s v%s on %s/%s", config.name, version, config.data, split)
    champion = load(f"models:/{config.name}/{version}", cache_dir=config.cache_dir)
    return score(champion, config.data, split, config.batch_size)["mean_dice"]


def _copy_to_serving(config: PushConfig, loaded, version: str, scores: dict) -> str:
    """Copy the SavedModel to `<serving_dir>/<version>/` and write the PUSHED marker last."""
    target = storage.join(config.serving_dir, version)
    with tempfile.TemporaryDirectory() as tmp:
        source = loaded.saved_model_dir
        if source is None:
            # Models from MLflow carry only model.keras; export the SavedModel the way train does.
            source = Path(tmp) / "saved_model"
            loaded.model.export(str(source), verbose=False)
        written = storage.copy_tree(source, target)
    marker = {
        "name": config.name,
        "version": version,
        "model_ref": config.model,
        "mean_dice": scores["mean_dice"],
        "files": len(written),
        "pushed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    storage.write_text(storage.join(target, PUSHED_MARKER), json.dumps(marker, indent=2) + "\n")
    log.info("copied SavedModel v%s to %s", version, target)
    return target


def push(config: PushConfig) -> PushResult:
    """Register `config.model`, run the gates and move the aliases when it is blessed.

    Raises:
        ValueError: bad metrics file, shards that differ from those the metrics came from, or a
            model without an MLflow run.
        TimeoutError: `@champion` kept moving under us for `max_attempts` comparisons.
    """
    from cityseg.components.dataset import load_manifest
    from cityseg.components.modelstore import load

    scores = read_metrics(config.metrics)
    split = scores["split"]
    manifest = load_manifest(config.data)
    manifest_hash = manifest.get("content_hash")
    if scores.get("data_manifest_hash") and manifest_hash and scores["data_manifest_hash"] != manifest_hash:
        raise ValueError(
            f"{config.metrics} was computed on shards {scores['data_manifest_hash'][:12]}, but {config.data} "
            f"holds {manifest_hash[:12]}: the champion must be re-scored on the same data"
        )
    tracking.connect(config.tracking_uri)
    loaded = load(config.model, cache_dir=config.cache_dir)
    version = _register(config, loaded, _version_tags(scores, manifest_hash, config.kfp_run_id))
    log.info("registered %s as %s v%s", config.model, config.name, version)

    champion_dice: dict[str, float | None] = {}
    for attempt in range(1, config.max_attempts + 1):
        champion = registry.alias_version(config.name, registry.CHAMPION)
        if champion == version:
            decision = Decision(True, f"v{version} is already the champion")
            return _result(config, decision, version, scores, attempts=attempt)
        if (
            champion is not None
            and champion not in champion_dice
            and _dice(scores["mean_dice"]) >= config.min_dice
        ):
            champion_dice[champion] = _score_champion(config, champion, split)
        decision = gate(
            scores["mean_dice"],
            config.min_dice,
            config.min_improvement,
            champion,
            champion_dice.get(champion),
        )
        if not decision.blessed:
            _tag_decision(config.name, version, decision, champion, champion_dice.get(champion))
            log.info("not blessed: %s", decision.reason)
            return _result(
                config,
                decision,
                version,
                scores,
                champion=champion,
                champion_dice=champion_dice.get(champion),
                attempts=attempt,
            )
        try:
            with registry.AliasLock(config.name) as lock:
                now = registry.alias_version(config.name, registry.CHAMPION)
                if now != champion:
                    log.info(
                        "@champion moved from v%s to v%s during this push; comparing again", champion, now
                    )
                    continue
                record = {
                    "action": "push",
                    "champion": version,
                    "previous": champion,
                    "reason": decision.reason,
                    "user": registry.current_user(),
                    "at": _now(),
                }
                registry.move_aliases(config.name, version, champion, lock=lock, record=record)
        except registry.LockLostError as err:
            log.warning("%s; comparing again", err)
            continue
        _tag_decision(config.name, version, decision, champion, champion_dice.get(champion))
        log.info("blessed: %s", decision.reason)
        serving_path = _copy_to_serving(config, loaded, version, scores) if config.serving_dir else None
        if serving_path:
            registry.set_version_tags(config.name, version, {"serving_path": serving_path})
        return _result(
            config,
            decision,
            version,
            scores,
            champion=champion,
            champion_dice=champion_dice.get(champion),
            attempts=attempt,
            serving_path=serving_path,
        )
    raise TimeoutError(
        f"@champion of {config.name!r} kept moving during {config.max_attempts} comparisons; push again"
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _tag_decision(name: str, version: str, decision: Decision, champion: str | None, champion_dice) -> None:
    tags = {"blessed": "true" if decision.blessed else "false", "blessing_reason": decision.reason}
    if champion is not None:
        tags["compared_with_version"] = champion
        tags["compared_with_mean_dice"] = "n/a" if champion_dice is None else f"{champion_dice:.6g}"
    registry.set_version_tags(name, version, tags)


def _result(
    config, decision, version, scores, *, champion=None, champion_dice=None, attempts=1, serving_path=None
) -> PushResult:
    model_aliases = registry.aliases(config.name)
    return PushResult(
        blessed=decision.blessed,
        reason=decision.reason,
        version=version,
        aliases=tuple(sorted(alias for alias, v in model_aliases.items() if v == version)),
        model_aliases=model_aliases,
        mean_dice=_dice(scores["mean_dice"]),
        champion_version=champion,
        champion_mean_dice=champion_dice,
        serving_path=serving_path,
        attempts=attempts,
    )


def promote(name: str, version: str | int, *, reason: str, user: str | None = None) -> dict[str, str]:
    """Make `version` the champion by hand; the old champion becomes `@previous`.

    Returns:
        The aliases afterwards.

    Raises:
        ValueError: unknown registered model or version, or no reason given.
    """
    if not reason.strip():
        raise ValueError("a promotion needs a reason")
    version = registry.check_version(name, version)
    user = user or registry.current_user()
    with registry.AliasLock(name) as lock:
        champion = registry.alias_version(name, registry.CHAMPION)
        if champion == version:
            log.info("%s v%s is already the champion", name, version)
            return registry.aliases(name)
        record = {
            "action": "promote",
            "champion": version,
            "previous": champion,
            "reason": reason,
            "user": user,
            "at": _now(),
        }
        registry.move_aliases(name, version, champion, lock=lock, record=record)
    registry.set_version_tags(
        name, version, {"promoted_by": user, "promote_reason": reason, "promoted_at": record["at"]}
    )
    return registry.aliases(name)


def rollback(name: str, *, reason: str, user: str | None = None) -> dict[str, str]:
    """Put `@champion` back on `@previous`; the demoted version becomes `@previous` (rollback twice = undo).

    Returns:
        The aliases afterwards.

    Raises:
        ValueError: unknown registered model, no reason, or no `@previous` to go back to.
    """
    if not reason.strip():
        raise ValueError("a rollback needs a reason")
    registry.get_registered_model(name)
    user = user or registry.current_user()
    with registry.AliasLock(name) as lock:
        current = registry.aliases(name)
        champion, previous = current.get(registry.CHAMPION), current.get(registry.PREVIOUS)
        if previous is None:
            raise ValueError(f"registered model {name!r} has no @previous version to roll back to")
        record = {
            "action": "rollback",
            "champion": previous,
            "previous": champion,
            "reason": reason,
            "user": user,
            "at": _now(),
        }
        registry.move_aliases(name, previous, champion, lock=lock, record=record)
    if champion is not None:
        registry.set_version_tags(
            name,
            champion,
            {"rolled_back_by": user, "rollback_reason": reason, "rolled_back_at": record["at"]},
        )
    return registry.aliases(name)
