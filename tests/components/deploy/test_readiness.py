"""`rollout.readiness` on the condition sets KServe itself writes (tests/data/kserve/SOURCE.md)."""

import json
from pathlib import Path

import pytest

from cityseg.components.deploy import rollout

DATA = Path(__file__).resolve().parents[2] / "data" / "kserve"
VERSIONS = ("v0.14.1", "v0.15.2", "v0.20.0")
NEW = "cityseg-predictor-00002"
OLD = "cityseg-predictor-00001"
WAIT = 'Configuration "cityseg-predictor" is waiting for a Revision to become ready.'


def _status(version: str, name: str) -> dict:
    return {"status": json.loads((DATA / f"status-{version}.json").read_text())["statuses"][name]}


def test_each_fixture_names_its_kserve_tag_and_commit():
    for version in VERSIONS:
        doc = json.loads((DATA / f"status-{version}.json").read_text())
        assert doc["kserve"] == version and len(doc["commit"]) == 40
        assert (
            version in (DATA / "SOURCE.md").read_text() and doc["commit"] in (DATA / "SOURCE.md").read_text()
        )


@pytest.mark.parametrize("version", VERSIONS)
def test_a_healthy_service_is_ready_whatever_its_info_conditions_say(version):
    isvc = _status(version, "healthy")
    stopped = [c for c in isvc["status"]["conditions"] if c["type"] == "Stopped"]
    # v0.15.1 on, a healthy service carries Stopped=False: the condition that broke the old check.
    assert stopped == ([] if version == "v0.14.1" else [{**stopped[0], "status": "False"}])
    assert rollout.readiness(isvc, percent=100) == (
        rollout.READY,
        f"revision {OLD} is Ready with 100% of the traffic",
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_a_ready_canary_is_ready_at_its_share_and_not_before_its_revision_exists(version):
    isvc = _status(version, "canary")
    assert rollout.readiness(isvc, percent=10, old_revision=OLD) == (
        rollout.READY,
        f"revision {NEW} is Ready with 10% of the traffic",
    )
    assert rollout.readiness(isvc, percent=100) == (
        rollout.WAITING,
        f"revision {NEW} takes 10% of the traffic, not 100% yet",
    )
    assert rollout.readiness(_status(version, "healthy"), percent=10, old_revision=OLD) == (
        rollout.WAITING,
        f"the KServe controller has not created the new revision yet (newest: {OLD})",
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_a_rolling_service_waits_with_knatives_reason(version):
    assert rollout.readiness(_status(version, "rolling"), percent=10, old_revision=OLD) == (
        rollout.WAITING,
        f"Ready=Unknown: RevisionMissing {WAIT}",
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_a_failed_revision_waits_naming_the_failure(version):
    state, why = rollout.readiness(_status(version, "failed"), percent=10, old_revision=OLD)
    assert state == rollout.WAITING
    assert why.startswith(
        f'Ready=False: RevisionFailed Revision "{NEW}" failed with message: Container failed'
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_a_promoted_canary_is_ready_with_all_traffic(version):
    assert rollout.readiness(_status(version, "promoted"), percent=100) == (
        rollout.READY,
        f"revision {NEW} is Ready with 100% of the traffic",
    )


@pytest.mark.parametrize("version", ["v0.15.2", "v0.20.0"])
def test_a_stopped_service_is_stopped_not_waiting(version):
    state, why = rollout.readiness(_status(version, "stopped"), percent=10, old_revision=OLD)
    assert state == rollout.STOPPED
    assert why.startswith("the InferenceService is stopped (Stopped=True")
    assert why.endswith("remove its serving.kserve.io/stop annotation to start it again")


def test_no_status_yet_waits_for_a_ready_condition():
    assert rollout.readiness({}, percent=100) == (rollout.WAITING, "no Ready condition yet")


def test_traffic_sums_a_revision_listed_twice():
    isvc = _status("v0.20.0", "canary")
    isvc["status"]["components"]["predictor"]["traffic"].append(
        {"latestRevision": True, "percent": 0, "revisionName": NEW, "tag": "latest"}
    )
    assert rollout.traffic(isvc) == {OLD: 90, NEW: 10}
