"""Push the object classifier to its own registered model with the segmenter's gate, evidence and aliases.

The same blessing as `cityseg.components.push.core`, on macro-F1: the evidence check binds
metrics.json to the weights, the MLflow run and the crops; the absolute gate needs `min_macro_f1`;
the change gate re-scores `@champion` on the same split of the same crops; a blessed version takes
`@champion` (and the old one `@previous`) under the alias lock. There is no serving copy or infra
validation yet: `cityseg serve` loads the classifier straight from the registry.
"""

import dataclasses
import logging

from cityseg.components import tracking
from cityseg.components.objects.config import ObjectsPushConfig
from cityseg.components.objects.data import load_crops_manifest
from cityseg.components.objects.evaluate import load_classifier, score
from cityseg.components.push import registry
from cityseg.components.push.core import Decision, _claim_champion, _register, _tag_decision, gate
from cityseg.components.push.evidence import check_evidence, read_metrics, version_tags

log = logging.getLogger(__name__)
METRIC = "macro_f1"


@dataclasses.dataclass(frozen=True)
class ObjectsPushResult:
    """The verdict, the registered version, the aliases it holds, and what it was compared with."""

    blessed: bool
    reason: str
    version: str
    aliases: tuple[str, ...]
    macro_f1: float
    champion_version: str | None = None
    champion_macro_f1: float | None = None
    attempts: int = 1


def _champion_score(config: ObjectsPushConfig, version: str, split: str) -> float | None:
    log.info("re-scoring champion %s v%s on %s/%s", config.name, version, config.data, split)
    champion = load_classifier(f"models:/{config.name}/{version}", config.cache_dir)
    return score(champion.model, config.data, split, config.batch_size)[METRIC]


def _gate(config: ObjectsPushConfig, new: float | None, champion: str | None, old: float | None) -> Decision:
    return gate(
        new, config.min_macro_f1, config.min_improvement, champion, old, metric=METRIC, minimum="min_macro_f1"
    )


def push(config: ObjectsPushConfig) -> ObjectsPushResult:
    """Check the evidence, register `config.model` and move the aliases when it passes the gates.

    Raises:
        ValueError: bad metrics, metrics of another model or other crops (nothing is registered
            then), or a model without an MLflow run.
        TimeoutError: `@champion` kept moving for `max_attempts` comparisons.
    """
    scores = read_metrics(config.metrics, METRIC)
    manifest = load_crops_manifest(config.data)
    tracking.connect(config.tracking_uri)
    loaded = load_classifier(config.model, config.cache_dir)
    check_evidence(scores, config.metrics, loaded, manifest, config.data)
    tags = version_tags(scores, manifest["content_hash"], config.kfp_run_id) | dict(config.lineage)
    version = _register(config, loaded, tags)
    log.info("registered %s as %s v%s", config.model, config.name, version)
    champion_scores: dict[str, float | None] = {}
    for attempt in range(1, config.max_attempts + 1):
        champion = registry.alias_version(config.name, registry.CHAMPION)
        if champion == version:
            return _result(
                config, Decision(True, f"v{version} is already the champion"), version, scores, attempt
            )
        if champion is not None and champion not in champion_scores:
            champion_scores[champion] = _champion_score(config, champion, scores["split"])
        old = champion_scores.get(champion)
        decision = _gate(config, scores[METRIC], champion, old)
        if decision.blessed and not _claim_champion(config.name, version, champion, decision.reason):
            continue
        _tag_decision(config.name, version, decision, champion, old, metric=METRIC)
        log.info("%s: %s", "blessed" if decision.blessed else "not blessed", decision.reason)
        return _result(config, decision, version, scores, attempt, champion, old)
    raise TimeoutError(
        f"@champion of {config.name!r} kept moving during {config.max_attempts} comparisons; push again"
    )


def _result(config, decision, version, scores, attempts, champion=None, old=None) -> ObjectsPushResult:
    held = tuple(sorted(alias for alias, v in registry.aliases(config.name).items() if v == version))
    return ObjectsPushResult(
        blessed=decision.blessed,
        reason=decision.reason,
        version=version,
        aliases=held,
        macro_f1=float(scores[METRIC] or 0.0),
        champion_version=champion,
        champion_macro_f1=old,
        attempts=attempts,
    )
