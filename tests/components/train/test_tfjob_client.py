"""The TFJob retry rule against a stand-in of the Kubernetes API, through the real `kubernetes` client.

No API server or Training Operator runs here. This HTTP server on 127.0.0.1 answers the TFJob paths
as the API server does: 201 on create and 409 AlreadyExists on a duplicate, 404 NotFound for a
missing job, a foreground DELETE that leaves the job readable with a `deletionTimestamp` for a few
reads before it is gone, and 409 Conflict when a DELETE's uid or resourceVersion precondition is
stale. It plays the operator with the statuses of tests/data/training-operator (one step per read).
"""

import copy
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client

from cityseg.components.train.tfjob_client import TFJobError, job_state, run_tfjob, submit

DATA = json.loads(
    (
        Path(__file__).resolve().parents[2] / "data" / "training-operator" / "tfjob-status-v1.9.0.json"
    ).read_text()
)
STATUSES = DATA["statuses"]
NAMESPACE, NAME = DATA["job"].split("/")
COLLECTION = f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/tfjobs"
ITEM = f"{COLLECTION}/{NAME}"


def _status_body(code: int, reason: str, message: str) -> dict:
    details = {"name": NAME, "group": "kubeflow.org", "kind": "tfjobs"}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details, "code": code}  # fmt: skip


@dataclass
class TFJobAPI:
    """The stored job, the operator's plan for a new job, and the recorded requests."""

    job: dict | None = None
    plan: list[str] = field(default_factory=lambda: ["created", "running", "succeeded"])
    grace_reads: int = 2  # reads that still see a deleted job (its pods terminating)
    write_before_delete: bool = False  # the operator writes the status between our read and our delete
    requests: list = field(default_factory=list)
    _version: int = 100
    _steps: list[str] = field(default_factory=list)

    def bump(self) -> None:
        self._version += 1
        self.job["metadata"]["resourceVersion"] = str(self._version)

    def store(self, body: dict, state: str | None, steps: list[str]) -> dict:
        self.job = copy.deepcopy(body)
        self.job["metadata"].update(
            uid=str(uuid.uuid4()), generation=1, creationTimestamp="2026-11-02T10:00:00Z"
        )
        self.job["status"] = copy.deepcopy(STATUSES[state]) if state else {}
        self._steps = list(steps)
        self.bump()
        return self.job

    def read(self) -> dict | None:
        """The job as a GET sees it now: the operator takes one step, a deleted job counts down."""
        if self.job is None:
            return None
        if self.job["metadata"].get("deletionTimestamp"):
            self.grace_reads -= 1
            if self.grace_reads < 0:
                self.job = None
                return None
        elif self._steps:
            self.job["status"] = copy.deepcopy(STATUSES[self._steps.pop(0)])
            self.bump()
        return self.job

    def delete(self, options: dict) -> tuple[int, dict]:
        if self.write_before_delete:
            self.write_before_delete = False
            self.bump()
        meta, wanted = self.job["metadata"], options.get("preconditions") or {}
        if wanted.get("uid") not in (None, meta["uid"]):
            message = "Precondition failed: UID in precondition: {}, UID in object meta: {}".format(
                wanted["uid"], meta["uid"]
            )
            return 409, _status_body(409, "Conflict", message)
        if wanted.get("resourceVersion") not in (None, meta["resourceVersion"]):
            message = (
                f'Operation cannot be fulfilled on tfjobs.kubeflow.org "{NAME}": the ResourceVersion in the '
                f"precondition ({wanted['resourceVersion']}) does not match the ResourceVersion in record "
                f"({meta['resourceVersion']}). The object might have been modified"
            )
            return 409, _status_body(409, "Conflict", message)
        meta.update(deletionTimestamp="2026-11-02T12:00:00Z", finalizers=["foregroundDeletion"])
        self._steps = []
        self.bump()
        return 200, self.job


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _not_found(self) -> None:
        self._reply(404, _status_body(404, "NotFound", f'tfjobs.kubeflow.org "{NAME}" not found'))

    def do_POST(self):
        api: TFJobAPI = self.server.api
        body = self._body()
        if api.job is not None:
            api.requests.append(("POST", 409))
            return self._reply(
                409, _status_body(409, "AlreadyExists", f'tfjobs.kubeflow.org "{NAME}" already exists')
            )
        api.requests.append(("POST", 201))
        self._reply(201, api.store(body, None, api.plan))

    def do_GET(self):
        api: TFJobAPI = self.server.api
        job = api.read() if self.path == ITEM else None
        api.requests.append(("GET", 200 if job else 404))
        return self._reply(200, job) if job else self._not_found()

    def do_DELETE(self):
        api: TFJobAPI = self.server.api
        options = self._body()
        if self.path != ITEM or api.job is None:
            api.requests.append(("DELETE", 404))
            return self._not_found()
        status, body = api.delete(options)
        api.requests.append(("DELETE", status, options))
        self._reply(status, body)


@pytest.fixture
def tfjob_api():
    """(CustomObjectsApi on the stand-in, its state)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.api = TFJobAPI()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    yield client.CustomObjectsApi(client.ApiClient(configuration)), server.api
    server.shutdown()
    server.server_close()


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
