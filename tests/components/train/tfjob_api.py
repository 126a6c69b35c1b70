"""A stand-in of the Kubernetes API for TFJobs, to drive the real `kubernetes` client against.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

from kubernetes import client

from tests.api_stand_in import JSONHandler

DATA = json.loads(
    (
        Path(__file__).resolve().parents[2] / "data" / "training-operator" / "tfjob-status-v1.9.0.json"
    ).read_text()
)
STATUSES = DATA["statuses"]
NAMESPACE, NAME = DATA["job"].split("/")
COLLECTION = f"/apis/kubeflow.org/v1/namespaces/{NAMESPACE}/tfjobs"


def _status_body(name: str, code: int, reason: str, message: str) -> dict:
    details = {"name": name, "group": "kubeflow.org", "kind": "tfjobs"}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details, "code": code}  # fmt: skip


@dataclass
class TFJobAPI:
    """The stored job `name`, the operator's plan for a new job, and the recorded requests."""

    name: str = NAME
    job: dict | None = None
    plan: list[str] = field(default_factory=lambda: ["created", "running", "succeeded"])
    grace_reads: int = 2  # reads that still see a deleted job (its pods terminating)
    write_before_delete: bool = False  # the operator writes the status between our read and our delete
    requests: list = field(default_factory=list)
    _version: int = 100
    _steps: list[str] = field(default_factory=list)

    @property
    def item(self) -> str:
        """The path of the job `name`; the API answers no other job's."""
        return f"{COLLECTION}/{self.name}"

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
            return 409, _status_body(self.name, 409, "Conflict", message)
        if wanted.get("resourceVersion") not in (None, meta["resourceVersion"]):
            message = (
                f'Operation cannot be fulfilled on tfjobs.kubeflow.org "{self.name}": the ResourceVersion '
                f"in the precondition ({wanted['resourceVersion']}) does not match the ResourceVersion in "
                f"record ({meta['resourceVersion']}). The object might have been modified"
            )
            return 409, _status_body(self.name, 409, "Conflict", message)
        meta.update(deletionTimestamp="2026-11-02T12:00:00Z", finalizers=["foregroundDeletion"])
        self._steps = []
        self.bump()
        return 200, self.job


class Handler(JSONHandler):
    """The TFJob paths of the API server, over the `TFJobAPI` state of its server."""

    def _not_found(self) -> None:
        name = self.server.api.name
        self.reply(404, _status_body(name, 404, "NotFound", f'tfjobs.kubeflow.org "{name}" not found'))

    def do_POST(self):
        api: TFJobAPI = self.server.api
        body = (self.json_body() or {})
        if api.job is not None:
            api.requests.append(("POST", 409))
            message = f'tfjobs.kubeflow.org "{api.name}" already exists'
            return self.reply(409, _status_body(api.name, 409, "AlreadyExists", message))
        api.requests.append(("POST", 201))
        self.reply(201, api.store(body, None, api.plan))

    def do_GET(self):
        api: TFJobAPI = self.server.api
        job = api.read() if self.path == api.item else None
        api.requests.append(("GET", 200 if job else 404))
        return self.reply(200, job) if job else self._not_found()

    def do_DELETE(self):
        api: TFJobAPI = self.server.api
        options = (self.json_body() or {})
        if self.path != api.item or api.job is None:
            api.requests.append(("DELETE", 404))
            return self._not_found()
        status, body = api.delete(options)
        api.requests.append(("DELETE", status, options))
        self.reply(status, body)


@contextmanager
def serve(state: TFJobAPI) -> Iterator[client.CustomObjectsApi]:
    """A CustomObjectsApi of the real client on a stand-in server holding `state`, for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.api = state
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield client.CustomObjectsApi(client.ApiClient(configuration))
    finally:
        server.shutdown()
        server.server_close()
