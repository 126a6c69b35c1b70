import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components import storage
from cityseg.components.push import registry
from cityseg.components.push.config import PushConfig
from cityseg.components.push.core import gate, push, read_metrics
from cityseg.components.push.lock import LOCK_TAG, AliasLock
from cityseg.components.push.registry import promote, rollback


def _push(candidate: dict, shards, name: str, metrics: str | None = None, **kwargs):
    config = PushConfig(
        model=candidate["model"],
        metrics=metrics or candidate["metrics"],
        data=str(shards),
        name=name,
        cache_dir=candidate["cache_dir"],
        **{"min_dice": 0.0, **kwargs},  # the absolute gate is off unless a test sets it
    )
    return push(config)


def test_gate_applies_the_absolute_then_the_change_threshold():
    assert gate(0.5, 0.6, 0.0).reason == "absolute gate: mean_dice 0.5000 < min_dice 0.6000"
    assert not gate(0.5, 0.6, 0.0).blessed
    assert gate(0.7, 0.6, 0.0).blessed
    refused = gate(0.7, 0.6, 0.05, "3", 0.68)
    assert not refused.blessed
    assert (
        refused.reason
        == "change gate: mean_dice 0.7000 - champion v3 0.6800 = +0.0200 < min_improvement +0.0500"
    )
    assert gate(0.7, 0.6, 0.02, "3", 0.68).blessed  # exactly the required gain counts
    assert gate(0.1, 0.0, 0.0, "3", None).blessed  # a champion scoring nothing ranks as 0
    assert not gate(None, 0.1, 0.0).blessed


def test_first_model_is_blessed_tagged_and_copied_to_serving(candidates, push_shards, model_name, tmp_path):
    good = candidates["good"]
    result = _push(
        good,
        push_shards,
        model_name,
        min_dice=0.5,
        kfp_run_id="kfp-42",
        serving_dir=str(tmp_path / "serving"),
    )
    assert result.blessed and result.version == "1"
    assert result.aliases == ("champion",) and result.model_aliases == {"champion": "1"}
    assert result.reason == f"no champion; mean_dice {good['mean_dice']:.4f} >= min_dice 0.5000"
    tags = registry.version_tags(model_name, "1")
    assert tags["blessed"] == "true" and tags["kfp_run_id"] == "kfp-42"
    assert float(tags["eval_mean_dice"]) == pytest.approx(good["mean_dice"], rel=1e-5)
    assert tags["data_manifest_hash"] == good["data_manifest_hash"]
    served = tmp_path / "serving" / "1"
    assert result.serving_path == str(served) and tags["serving_path"] == str(served)
    assert json.loads((served / "PUSHED").read_text())["version"] == "1"
    assert (served / "saved_model.pb").is_file()


def test_worse_model_is_refused_and_aliases_stay(candidates, push_shards, model_name):
    _push(candidates["good"], push_shards, model_name)
    result = _push(candidates["poor"], push_shards, model_name)
    good, poor = candidates["good"]["mean_dice"], candidates["poor"]["mean_dice"]
    assert not result.blessed and result.version == "2" and result.aliases == ()
    assert result.model_aliases == {"champion": "1"}
    assert result.champion_version == "1"
    assert result.champion_mean_dice == pytest.approx(good)  # re-scored on the same shards
    assert result.reason == (
        f"change gate: mean_dice {poor:.4f} - champion v1 {good:.4f} = {poor - good:+.4f} "
        "< min_improvement +0.0000"
    )
    tags = registry.version_tags(model_name, "2")
    assert tags["blessed"] == "false" and tags["blessing_reason"] == result.reason
    assert tags["compared_with_version"] == "1"
    absolute = _push(candidates["poor"], push_shards, model_name, min_dice=0.9)
    assert not absolute.blessed and absolute.reason.startswith("absolute gate: mean_dice")
    assert registry.aliases(model_name) == {"champion": "1"}


def test_better_model_becomes_champion_and_the_old_one_previous(candidates, push_shards, model_name):
    _push(candidates["good"], push_shards, model_name)
    result = _push(candidates["perfect"], push_shards, model_name, min_improvement=0.05)
    assert result.blessed and result.aliases == ("champion",)
    assert result.model_aliases == {"champion": "2", "previous": "1"}
    assert "beats champion v1" in result.reason
    last = json.loads(registry.get_registered_model(model_name).tags[registry.LAST_CHANGE_TAG])
    assert (last["action"], last["champion"], last["previous"]) == ("push", "2", "1")


def test_promote_and_rollback_record_who_and_why(candidates, push_shards, model_name):
    for candidate in ("poor", "good"):
        _push(candidates[candidate], push_shards, model_name)
    assert registry.aliases(model_name) == {"champion": "2", "previous": "1"}

    assert promote(model_name, 1, reason="night-time regression", user="ana") == {
        "champion": "1",
        "previous": "2",
    }
    tags = registry.version_tags(model_name, "1")
    assert (tags["promoted_by"], tags["promote_reason"]) == ("ana", "night-time regression")

    assert rollback(model_name, reason="promoted by mistake", user="ben") == {
        "champion": "2",
        "previous": "1",
    }
    tags = registry.version_tags(model_name, "1")
    assert (tags["rolled_back_by"], tags["rollback_reason"]) == ("ben", "promoted by mistake")
    last = json.loads(registry.get_registered_model(model_name).tags[registry.LAST_CHANGE_TAG])
    assert (last["action"], last["user"], last["reason"]) == ("rollback", "ben", "promoted by mistake")

    with pytest.raises(
        ValueError, match=rf"registered model '{model_name}' has no version 9 \(versions: 1, 2\)"
    ):
        promote(model_name, 9, reason="x")
    with pytest.raises(ValueError, match="registered model 'no-such-model' does not exist"):
        promote("no-such-model", 1, reason="x")
    with pytest.raises(ValueError, match="registered model 'no-such-model' does not exist"):
        rollback("no-such-model", reason="x")
    with pytest.raises(ValueError, match="needs a reason"):
        promote(model_name, 1, reason=" ")


def test_rollback_without_previous_is_refused(candidates, push_shards, model_name):
    _push(candidates["good"], push_shards, model_name)
    with pytest.raises(ValueError, match=f"registered model '{model_name}' has no @previous version"):
        rollback(model_name, reason="x")


class _LockWaits(logging.Handler):
    def __init__(self):
        super().__init__()
        self.count = 0

    def emit(self, record):
        if record.getMessage().startswith("waiting for the alias lock"):
            self.count += 1


def test_concurrent_pushes_leave_the_better_model_champion(candidates, push_shards, model_name):
    """Both pushes compare against the same old champion, then race for the alias move.

    The test holds the alias lock until both are blocked on it, so the second to get the lock always
    finds @champion moved by the first, and must compare again instead of moving it blindly.
    """
    _push(candidates["poor"], push_shards, model_name)
    waits, logger = _LockWaits(), logging.getLogger("cityseg.components.push.lock")
    level = logger.level
    logger.addHandler(waits)
    logger.setLevel(logging.INFO)
    results, errors = {}, []

    def run(candidate):
        try:
            results[candidate] = _push(candidates[candidate], push_shards, model_name)
        except Exception as err:  # surfaced by the assertion below; a thread cannot raise into the test
            errors.append(err)

    try:
        with AliasLock(model_name):
            threads = [threading.Thread(target=run, args=(c,)) for c in ("good", "perfect")]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 120
            while waits.count < 2 and time.monotonic() < deadline and not errors:
                time.sleep(0.2)
            assert waits.count == 2, "both pushes should be waiting for the alias lock"
        for thread in threads:
            thread.join(timeout=180)
    finally:
        logger.removeHandler(waits)
        logger.setLevel(level)
    assert not errors, errors
    perfect, good = results["perfect"], results["good"]
    assert registry.aliases(model_name)["champion"] == perfect.version
    assert perfect.blessed
    assert sorted(r.attempts for r in results.values()) == [1, 2]
    if good.blessed:  # good moved first; perfect then compared again against good
        assert perfect.attempts == 2 and perfect.champion_version == good.version
        assert registry.aliases(model_name)["previous"] == good.version
    else:  # perfect moved first; good then compared against perfect and was refused
        assert good.attempts == 2 and good.champion_version == perfect.version
        assert registry.aliases(model_name)["previous"] == "1"
    assert LOCK_TAG not in registry.get_registered_model(model_name).tags


def test_serving_copy_to_gcs_is_a_loadable_saved_model_with_marker(
    candidates, push_shards, model_name, gcs_emulator, tmp_path
):
    import tensorflow as tf

    bucket = gcs_emulator()
    # The perfect candidate comes from MLflow without a saved_model/; push exports it.
    result = _push(candidates["perfect"], push_shards, model_name, serving_dir=f"{bucket}/serving")
    assert result.serving_path == f"{bucket}/serving/1"
    files = list(storage.list_files(result.serving_path))
    assert f"{bucket}/serving/1/saved_model.pb" in files and f"{bucket}/serving/1/PUSHED" in files
    marker = json.loads(storage.read_text(f"{bucket}/serving/1/PUSHED"))
    assert marker["files"] == len(files) - 1 and marker["mean_dice"] == 1.0
    storage.copy_tree(result.serving_path, tmp_path / "served")
    served = tf.saved_model.load(str(tmp_path / "served"))
    image = np.zeros((1, 16, 32, 3), np.float32)
    image[..., 0] = 5 / 7
    assert (served.serve(image).numpy().argmax(-1) == 5).all()


def test_bad_metrics_and_models_are_refused_clearly(candidates, push_shards, model_name, tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"mean_iou": 0.5}))
    with pytest.raises(ValueError, match=r"metrics.json: missing keys mean_dice, split \("):
        read_metrics(str(path))
    path.write_text(json.dumps({"mean_dice": "high", "split": "val"}))
    with pytest.raises(ValueError, match=r"mean_dice must be a number in \[0, 1\] or null, got 'high'"):
        read_metrics(str(path))
    with pytest.raises(ValueError, match=r"nothing\.json: metrics file not found"):
        read_metrics(str(tmp_path / "nothing.json"))
    good = json.loads(Path(candidates["good"]["metrics"]).read_text())
    path.write_text(json.dumps({**good, "data_manifest_hash": "f" * 64}))
    with pytest.raises(ValueError, match="was computed on shards ffffffffffff"):
        _push(candidates["good"], push_shards, model_name, metrics=str(path))
    stray = tmp_path / "stray"
    storage.copy_tree(candidates["good"]["model"], stray)
    (stray / "train_info.json").write_text("{}")
    with pytest.raises(ValueError, match="no MLflow run is known for this model"):
        push(
            PushConfig(
                model=str(stray),
                metrics=candidates["good"]["metrics"],
                data=str(push_shards),
                name=model_name,
            )
        )


def test_cli_says_plainly_when_a_model_is_not_blessed(candidates, push_shards, model_name):
    runner = CliRunner()
    args = ["push", "--data", str(push_shards), "--name", model_name, "--min-dice", "0"]
    good, poor = candidates["good"], candidates["poor"]
    first = runner.invoke(main, [*args, "--model", good["model"], "--metrics", good["metrics"]])
    assert first.exit_code == 0, first.output
    refused = runner.invoke(main, [*args, "--model", poor["model"], "--metrics", poor["metrics"]])
    assert refused.exit_code == 0, refused.output
    assert f"{model_name} v2: NOT BLESSED (aliases unchanged): change gate" in refused.output
    assert "aliases: @champion -> v1" in refused.output
    unknown = runner.invoke(main, ["promote", "--name", model_name, "--version", "7", "--reason", "test"])
    assert (
        unknown.exit_code == 1
        and f"Error: registered model '{model_name}' has no version 7" in unknown.output
    )
    promoted = runner.invoke(
        main, ["promote", "--name", model_name, "--version", "2", "--reason", "test", "--user", "cy"]
    )
    assert promoted.exit_code == 0 and "@champion -> v2, @previous -> v1" in promoted.output
    back = runner.invoke(main, ["rollback", "--name", model_name, "--reason", "worse on night scenes"])
    assert back.exit_code == 0 and "@champion -> v1, @previous -> v2" in back.output
