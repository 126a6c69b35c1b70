"""A push binds the metrics to the model and the shards: metrics of another model are refused."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components.push import registry
from cityseg.components.push.config import PushConfig
from cityseg.components.push.core import push


def _push(candidate: dict, shards, name: str, metrics: str | None = None):
    config = PushConfig(
        model=candidate["model"],
        metrics=metrics or candidate["metrics"],
        data=str(shards),
        name=name,
        cache_dir=candidate["cache_dir"],
        min_dice=0.0,
    )
    return push(config)


def _versions(name: str) -> list[str]:
    return sorted(v.version for v in registry._client().search_model_versions(f"name = '{name}'"))


def test_a_model_pushed_with_another_models_metrics_is_refused(candidates, push_shards, model_name):
    _push(candidates["poor"], push_shards, model_name)
    good, perfect = candidates["good"], candidates["perfect"]
    with pytest.raises(ValueError) as caught:
        _push(good, push_shards, model_name, metrics=perfect["metrics"])
    expected = f"{perfect['metrics']} scored another model ({perfect['model']}, weights "
    assert str(caught.value).startswith(expected)
    assert f"not {good['model']} (weights {good['model_sha256'][:12]})" in str(caught.value)
    assert _versions(model_name) == ["1"] and registry.aliases(model_name) == {"champion": "1"}
    args = ["push", "--data", str(push_shards), "--name", model_name, "--model", good["model"]]
    result = CliRunner().invoke(main, [*args, "--metrics", perfect["metrics"]])
    assert result.exit_code == 1 and f"Error: {perfect['metrics']} scored another model" in result.output
    assert _versions(model_name) == ["1"] and registry.aliases(model_name) == {"champion": "1"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data_manifest_hash": None}, "missing keys data_manifest_hash"),
        ({"model_sha256": None}, "missing keys model_sha256"),
        ({"mlflow_run_id": "0" * 32}, f"scored the model of MLflow run {'0' * 32}, but "),
    ],
    ids=["no data hash", "no model checksum", "other run"],
)
def test_metrics_without_or_with_other_evidence_are_refused(
    candidates, push_shards, model_name, tmp_path, change, message
):
    path = tmp_path / "metrics.json"
    scores = {**json.loads(Path(candidates["good"]["metrics"]).read_text()), **change}
    path.write_text(json.dumps({key: value for key, value in scores.items() if value is not None}))
    with pytest.raises(ValueError, match=message):
        _push(candidates["good"], push_shards, model_name, metrics=str(path))
    with pytest.raises(ValueError, match="does not exist"):
        registry.aliases(model_name)  # nothing was registered
