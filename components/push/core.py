"""The blessing gate: register a model and promote it to `@champion` only when it earns it.

TFX's Evaluator/Pusher semantics on MLflow aliases:
- absolute gate: `mean_dice >= min_dice`;
- change gate (when `@champion` exists): the champion is re-scored on the same split of the same
  shards in this run, and `new - champion >= min_improvement`;
- blessed: `@champion` -> new version, `@previous` -> old champion, SavedModel copied to the
  serving folder under `<version>/` (`cityseg.components.push.serving`);
- then, before any alias moves: the int8 export gate (`max_int8_iou_drop`) and infra validation
  (the version served by `cityseg serve`'s app, see `cityseg.components.push.infra_validation`);
- not blessed: aliases untouched, version tagged `blessed=false` with the reason. A refusal is a
  normal outcome, not an error.
The evidence is checked before anything is registered: metrics.json must name the weights of the
model being pushed (`model_sha256`, and its MLflow run when both know one) and the shards it was
scored on (`data_manifest_hash`), so one model is never blessed with another's scores.
The compare-and-move runs under `cityseg.components.push.lock.AliasLock` and re-checks `@champion`
before moving it, so concurrent pushes never leave the champion on the worse model.
"""

import dataclasses
import logging
import math

from cityseg.components import tracking
from cityseg.components.push import lock, registry, serving
from cityseg.components.push.config import PushConfig
from cityseg.components.push.evidence import check_evidence, int8_refusal, read_metrics, version_tags
from cityseg.components.push.infra_validation import InfraResult, validate_version

log = logging.getLogger(__name__)


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
    *,
    metric: str = "mean_dice",
    minimum: str = "min_dice",
) -> Decision:
    """Apply the absolute gate, then (when there is a champion) the change gate.

    `metric` and `minimum` name the score and its threshold in the reasons: the object classifier's
    gate is the same on macro_f1 and min_macro_f1.
    """
    new = _dice(mean_dice)
    if new < min_dice:
        return Decision(False, f"absolute gate: {metric} {new:.4f} < {minimum} {min_dice:.4f}")
    if champion_version is None:
        return Decision(True, f"no champion; {metric} {new:.4f} >= {minimum} {min_dice:.4f}")
    old = _dice(champion_dice)
    gain = new - old
    # Scores are sums of float ratios: a tie must count as a tie, not as -1e-17.
    if gain < min_improvement and not math.isclose(gain, min_improvement, abs_tol=1e-12):
        return Decision(
            False,
            f"change gate: {metric} {new:.4f} - champion v{champion_version} {old:.4f} = {gain:+.4f} "
            f"< min_improvement {min_improvement:+.4f}",
        )
    return Decision(
        True,
        f"{metric} {new:.4f} >= {minimum} {min_dice:.4f} and beats champion v{champion_version} "
        f"{old:.4f} by {gain:+.4f} >= min_improvement {min_improvement:+.4f}",
    )


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


def push(config: PushConfig) -> PushResult:
    """Check the evidence, register `config.model`, run the gates and move the aliases when it is blessed.

    Raises:
        ValueError: bad metrics file, metrics of another model or other shards (nothing is
            registered then), or a model without an MLflow run.
        TimeoutError: `@champion` kept moving under us for `max_attempts` comparisons.
    """
    from cityseg.components.dataset import load_manifest
    from cityseg.components.modelstore import load

    scores = read_metrics(config.metrics)
    manifest = load_manifest(config.data)
    tracking_uri = tracking.connect(config.tracking_uri)
    loaded = load(config.model, cache_dir=config.cache_dir)
    check_evidence(scores, config.metrics, loaded, manifest, config.data)
    tags = version_tags(scores, manifest["content_hash"], config.kfp_run_id) | dict(config.lineage)
    version = _register(config, loaded, tags)
    log.info("registered %s as %s v%s", config.model, config.name, version)

    champion_dice: dict[str, float | None] = {}
    infra: dict[str, InfraResult] = {}
    for attempt in range(1, config.max_attempts + 1):
        champion = registry.alias_version(config.name, registry.CHAMPION)
        if champion == version:
            decision = Decision(True, f"v{version} is already the champion")
            return _result(config, decision, version, scores, attempts=attempt)
        decision = _decide(config, scores, loaded, version, champion, champion_dice, infra, tracking_uri)
        # A refusal is final; a blessing stands only if @champion did not move since it was read.
        if not decision.blessed or _claim_champion(config.name, version, champion, decision.reason):
            compared = {
                "champion": champion,
                "champion_dice": champion_dice.get(champion),
                "attempts": attempt,
            }
            return _finish(config, loaded, version, scores, decision, compared)
    raise TimeoutError(
        f"@champion of {config.name!r} kept moving during {config.max_attempts} comparisons; push again"
    )


def _decide(
    config: PushConfig,
    scores: dict,
    loaded,
    version: str,
    champion: str | None,
    champion_dice: dict[str, float | None],
    infra: dict[str, InfraResult],
    tracking_uri: str,
) -> Decision:
    """The verdict against `champion`: the metric gates, the int8 export gate, then infra validation.

    The champion is re-scored and the candidate served at most once each: `champion_dice` and
    `infra` keep the results across attempts.
    """
    if (
        champion is not None
        and champion not in champion_dice
        and _dice(scores["mean_dice"]) >= config.min_dice
    ):
        champion_dice[champion] = _score_champion(config, champion, scores["split"])
    decision = gate(
        scores["mean_dice"], config.min_dice, config.min_improvement, champion, champion_dice.get(champion)
    )
    refusal = int8_refusal(scores, config.max_int8_iou_drop) if decision.blessed else None
    if refusal:
        return Decision(False, refusal)
    if decision.blessed and config.infra_validation:
        if version not in infra:
            infra[version] = validate_version(config, loaded, version, scores["split"], tracking_uri)
        if not infra[version].passed:
            return Decision(False, infra[version].reason)
    return decision


def _finish(
    config: PushConfig, loaded, version: str, scores: dict, decision: Decision, compared: dict
) -> PushResult:
    """Tag the verdict on the version, copy a blessed model to the serving folder, and report the outcome."""
    _tag_decision(config.name, version, decision, compared["champion"], compared["champion_dice"])
    log.info("%s: %s", "blessed" if decision.blessed else "not blessed", decision.reason)
    serving_path = None
    if decision.blessed and config.serving_dir:
        serving_path = serving.copy_to_serving(
            config.serving_dir,
            loaded,
            name=config.name,
            version=version,
            model_ref=config.model,
            mean_dice=scores["mean_dice"],
        )
        registry.set_version_tags(config.name, version, {"serving_path": serving_path})
    return _result(config, decision, version, scores, serving_path=serving_path, **compared)


def _claim_champion(name: str, version: str, expected: str | None, reason: str) -> bool:
    """Under the alias lock, make `version` champion if `@champion` is still `expected`.

    Returns:
        True when the aliases moved; False, moving nothing, when `@champion` moved meanwhile or the
        lock was lost, so the gate compares again.
    """
    try:
        with lock.AliasLock(name) as held:
            now = registry.alias_version(name, registry.CHAMPION)
            if now != expected:
                log.info("@champion moved from v%s to v%s during this push; comparing again", expected, now)
                return False
            record = registry.change_record("push", version, expected, reason, lock.current_user())
            registry.move_aliases(name, version, expected, lock=held, record=record)
    except lock.LockLostError as err:
        log.warning("%s; comparing again", err)
        return False
    return True


def _tag_decision(
    name: str,
    version: str,
    decision: Decision,
    champion: str | None,
    champion_dice,
    metric: str = "mean_dice",
) -> None:
    tags = {"blessed": "true" if decision.blessed else "false", "blessing_reason": decision.reason}
    if champion is not None:
        tags["compared_with_version"] = champion
        tags[f"compared_with_{metric}"] = "n/a" if champion_dice is None else f"{champion_dice:.6g}"
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
