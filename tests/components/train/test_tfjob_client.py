"""The TFJob retry rule against a stand-in of the Kubernetes API (`tfjob_api`), through the real client."""

import copy

import pytest

from cityseg.components.train.tfjob_client import TFJobError, job_state, run_tfjob, submit
from tests.components.train.tfjob_api import NAME, NAMESPACE, STATUSES, TFJobAPI, serve


@pytest.fixture
def tfjob_api():
    """(CustomObjectsApi on the stand-in, its state)."""
    state = TFJobAPI()
    with serve(state) as api:
        yield api, state


def _body() -> dict:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {"tfReplicaSpecs": {"Worker": {"replicas": 2}}},
    }


def _methods(api: TFJobAPI) -> list[tuple]:
    return [request[:2] for request in api.requests]


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("created", ("Created", f"TFJob {NAME} is created.")),
        ("running", ("Running", f"TFJob {NAMESPACE}/{NAME} is running.")),
        ("restarting", ("Restarting", f"job {NAME} is restarting because Worker replica(s) failed.")),
        ("succeeded", ("Succeeded", f"TFJob {NAMESPACE}/{NAME} successfully completed.")),
        ("failed", ("Failed", f"TFJob {NAMESPACE}/{NAME} has failed because 1 Worker replica(s) failed.")),
    ],
)
def test_job_state_reads_the_operators_conditions(name, state):
    assert job_state({"status": STATUSES[name]}) == state


def test_a_finished_condition_wins_over_a_later_one():
    status = copy.deepcopy(STATUSES["failed"])
    status["conditions"].append({"type": "Restarting", "status": "True", "message": "late"})
    assert job_state({"status": status})[0] == "Failed"
    assert job_state({}) == ("Pending", "waiting for the training operator")


def test_a_first_attempt_creates_the_job_and_waits_for_it(tfjob_api):
    api, state = tfjob_api
    run_tfjob(_body(), api, poll_s=0.001)
    assert _methods(state) == [("POST", 201), ("GET", 200), ("GET", 200), ("GET", 200)]


@pytest.mark.parametrize("leftover", ["created", "running", "restarting"])
def test_a_retry_adopts_a_job_that_has_not_finished(tfjob_api, leftover):
    api, state = tfjob_api
    uid = state.store(_body(), leftover, [leftover, "running", "succeeded"])["metadata"]["uid"]
    run_tfjob(_body(), api, poll_s=0.001)
    assert _methods(state) == [("POST", 409), ("GET", 200), ("GET", 200), ("GET", 200)]
    assert state.job["metadata"]["uid"] == uid, "the same job, never deleted"
    assert job_state(state.job)[0] == "Succeeded"


@pytest.mark.parametrize("leftover", ["succeeded", "failed"])
def test_a_retry_replaces_a_finished_job_once_it_is_gone(tfjob_api, leftover):
    api, state = tfjob_api
    old = state.store(_body(), leftover, [])
    old_uid, old_version = old["metadata"]["uid"], old["metadata"]["resourceVersion"]
    run_tfjob(_body(), api, poll_s=0.001)
    assert _methods(state) == [
        ("POST", 409),
        ("GET", 200),
        ("DELETE", 200),
        ("GET", 200),  # still there, terminating its pods
        ("GET", 200),
        ("GET", 404),
        ("POST", 201),
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
    ]
    (options,) = [request[2] for request in state.requests if request[0] == "DELETE"]
    assert options["propagationPolicy"] == "Foreground"
    assert options["preconditions"] == {"uid": old_uid, "resourceVersion": old_version}
    assert state.job["metadata"]["uid"] != old_uid
    assert job_state(state.job)[0] == "Succeeded"


def test_a_delete_that_meets_a_newer_version_reads_and_judges_again(tfjob_api):
    api, state = tfjob_api
    state.store(_body(), "failed", [])
    state.write_before_delete = True
    assert submit(api, _body(), poll_s=0.001) == "replaced"
    deletes = [request[1] for request in state.requests if request[0] == "DELETE"]
    assert deletes == [409, 200]
    assert [m for m in _methods(state) if m[0] == "POST"] == [("POST", 409), ("POST", 409), ("POST", 201)]


def test_a_job_already_being_deleted_is_waited_for_then_created(tfjob_api):
    api, state = tfjob_api
    state.store(_body(), "failed", [])
    state.job["metadata"]["deletionTimestamp"] = "2026-11-02T12:00:00Z"
    assert submit(api, _body(), poll_s=0.001) == "replaced"
    assert [m for m in _methods(state) if m[0] != "GET"] == [("POST", 409), ("POST", 201)]


def test_a_failed_job_fails_the_task_with_the_operators_message(tfjob_api):
    api, state = tfjob_api
    state.plan = ["created", "running", "failed"]
    with pytest.raises(TFJobError) as err:
        run_tfjob(_body(), api, poll_s=0.001)
    assert str(err.value) == (
        f"TFJob {NAMESPACE}/{NAME} failed: "
        f"TFJob {NAMESPACE}/{NAME} has failed because 1 Worker replica(s) failed."
    )


def test_a_job_that_never_goes_away_is_named(tfjob_api):
    api, state = tfjob_api
    state.store(_body(), "failed", [])
    state.grace_reads = 10**6
    clock = iter(range(10**6)).__next__
    with pytest.raises(TFJobError, match=f"TFJob {NAMESPACE}/{NAME} was deleted but still exists after 5s"):
        submit(api, _body(), poll_s=0.001, gone_timeout_s=5, clock=clock)
