"""A recording stand-in of the Kubernetes API for one KServe InferenceService and its predictor pods.

No API server or KServe controller can run here. This HTTP server on 127.0.0.1 answers GET and
merge-PATCH on `/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}` the way the
API server does (RFC 7386 merge patch, `metadata.generation` bumped when the spec changes), lists the
pods of a revision by its Knative label, and plays the controller from a script: after how many
reads a new revision becomes Ready, that it never does, or that the service is stopped. The statuses
it writes have the conditions KServe v0.20.0 writes (tests/data/kserve/status-v0.20.0.json). Every
request is recorded, so the tests check what a real cluster would receive.
"""

import copy
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import prometheus_client
import pytest
import yaml

from cityseg.components.serve.telemetry import Telemetry
from tests.api_stand_in import JSONHandler

ROOT = Path(__file__).resolve().parents[3]
PATH = "/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}"
PODS = "/api/v1/namespaces/{namespace}/pods"
KSERVE = json.loads((ROOT / "tests" / "data" / "kserve" / "status-v0.20.0.json").read_text())["statuses"]


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def revision(generation: int) -> str:
    return f"cityseg-predictor-{generation:05d}"


def ready_status(latest: int, rolled_out: int, canary: int | None, url: str, generation: int = 0) -> dict:
    """What KServe reports once revision `latest` is Ready beside the rolled-out one."""
    if canary is None or latest == rolled_out:
        routes = [{"revisionName": revision(latest), "percent": 100, "latestRevision": True}]
    elif canary == 0:
        routes = [{"revisionName": revision(rolled_out), "percent": 100, "tag": "prev"}]
    else:
        routes = [
            {"revisionName": revision(rolled_out), "percent": 100 - canary, "tag": "prev"},
            {"revisionName": revision(latest), "percent": canary, "latestRevision": True},
        ]
    return {
        "observedGeneration": generation or latest,
        "url": "http://cityseg.kubeflow.example.com",
        "address": {"url": url},
        "conditions": copy.deepcopy(KSERVE["healthy"]["conditions"]),
        "components": {
            "predictor": {
                "latestCreatedRevision": revision(latest),
                "latestReadyRevision": revision(latest),
                "latestRolledoutRevision": revision(rolled_out),
                "previousRolledoutRevision": revision(rolled_out),
                "traffic": routes,
            }
        },
    }


def failed_status(latest: int, ready: int, canary: int, generation: int) -> dict:
    """What KServe reports while revision `latest` crash-loops beside the Ready one."""
    conditions = copy.deepcopy(KSERVE["failed"]["conditions"])
    for condition in conditions:
        if "message" in condition:
            condition["message"] = condition["message"].replace(revision(2), revision(latest))
    return {
        "observedGeneration": generation,
        "conditions": conditions,
        "components": {
            "predictor": {
                "latestCreatedRevision": revision(latest),
                "latestReadyRevision": revision(ready),
                "latestRolledoutRevision": revision(ready),
                "traffic": [{"revisionName": revision(ready), "percent": 100 - canary, "tag": "prev"}],
            }
        },
    }


@dataclass
class KServeAPI:
    """The stored object, the controller script, and the recorded requests."""

    namespace: str = "kubeflow"
    name: str = "cityseg"
    obj: dict | None = None
    ready_after_reads: int | None = 1  # None: a new revision never becomes Ready
    stopped: bool = False  # the serving.kserve.io/stop annotation is "true"
    refuse: tuple[int, str] | None = None  # (status, message) for every request
    pods: dict | None = field(default_factory=dict)  # revision -> [(pod name, pod IP)]; None: forbidden
    requests: list = field(default_factory=list)
    url: str = "http://cityseg.kubeflow.svc.cluster.local"
    _reads_since_change: int = 0
    rolled_out: int = 1
    latest: int = 1

    @property
    def path(self) -> str:
        return PATH.format(namespace=self.namespace, name=self.name)

    def observe(self) -> dict:
        """The object as a GET sees it now: the controller catches up after `ready_after_reads` reads."""
        self._reads_since_change += 1
        generation = self.obj["metadata"]["generation"]
        canary = self.obj["spec"]["predictor"].get("canaryTrafficPercent")
        if self.stopped:
            self.obj["status"] = copy.deepcopy(KSERVE["stopped"])
        elif self.ready_after_reads is None and self.latest > self.rolled_out:
            self.obj["status"] = failed_status(self.latest, self.rolled_out, canary or 0, generation)
        elif self.ready_after_reads is not None and self._reads_since_change > self.ready_after_reads:
            self.obj["status"] = ready_status(self.latest, self.rolled_out, canary, self.url, generation)
            if canary is None:
                self.rolled_out = self.latest
        return self.obj

    def apply(self, patch: dict) -> dict:
        """Merge `patch`; a new generation for any spec change, a new revision for a new pod template."""
        before = self.obj["spec"]
        self.obj = merge_patch(self.obj, patch)
        if self.obj["spec"] != before:
            self.obj["metadata"]["generation"] += 1
            self._reads_since_change = 0
        template = {k: v for k, v in self.obj["spec"]["predictor"].items() if k != "canaryTrafficPercent"}
        if template != {k: v for k, v in before["predictor"].items() if k != "canaryTrafficPercent"}:
            self.latest += 1
        return self.obj


class Handler(JSONHandler):

    def _pods(self, api: "KServeAPI") -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if api.pods is None:  # the service account may not list pods (the Role lacks the rule)
            message = (
                'pods is forbidden: User "system:serviceaccount:kubeflow:pipeline-runner" cannot list '
                'resource "pods" in API group "" in the namespace "kubeflow"'
            )
            body = {
                "kind": "Status",
                "status": "Failure",
                "message": message,
                "reason": "Forbidden",
                "code": 403,
            }
            return self.reply(403, body)
        (selector,) = query["labelSelector"]
        label, revision_name = selector.split("=")
        assert label == "serving.knative.dev/revision" and query["fieldSelector"] == ["status.phase=Running"]
        items = [
            {"metadata": {"name": pod, "namespace": api.namespace, "labels": {label: revision_name}},
             "status": {"phase": "Running", "podIP": ip}}
            for pod, ip in api.pods.get(revision_name, [])
        ]  # fmt: skip
        self.reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    def _handle(self, body=None):
        api: KServeAPI = self.server.api
        api.requests.append((self.command, self.path, self.headers.get("Content-Type"), body))
        if self.path.startswith(PODS.format(namespace=api.namespace) + "?") and not api.refuse:
            return self._pods(api)
        if api.refuse:
            status, message = api.refuse
            return self.reply(
                status, {"kind": "Status", "status": "Failure", "message": message, "code": status}
            )
        if self.path != api.path or api.obj is None:
            message = f'inferenceservices.serving.kserve.io "{self.path.rsplit("/", 1)[-1]}" not found'
            return self.reply(404, {"kind": "Status", "status": "Failure", "message": message, "code": 404})
        return self.reply(200, api.observe() if body is None else api.apply(body))

    def do_GET(self):
        self._handle()

    def do_PATCH(self):
        self._handle(self.json_body())


def committed_inferenceservice(model: str | None = None) -> dict:
    """The InferenceService of manifests/serving as the API server returns it after `kubectl apply`,
    its predictor loading `model` when given (as after an earlier deploy), else what the file says."""
    docs = yaml.safe_load_all((ROOT / "manifests" / "serving" / "inferenceservice.yaml").read_text())
    (isvc,) = [doc for doc in docs if doc and doc["kind"] == "InferenceService"]
    isvc["metadata"].update(namespace="kubeflow", generation=1)
    if model is not None:
        args = isvc["spec"]["predictor"]["containers"][0]["args"]
        args[args.index("--model") + 1] = model
    isvc["status"] = ready_status(1, 1, None, "http://cityseg.kubeflow.svc.cluster.local")
    return isvc


@pytest.fixture
def kserve_api():
    """(API URL, KServeAPI state) of a recording stand-in holding the committed InferenceService."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # As after an earlier deploy: the predictor pinned to v6 (the committed file follows @champion).
    server.api = KServeAPI(obj=committed_inferenceservice("models:/cityseg/6"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server.api
    server.shutdown()
    server.server_close()


@dataclass
class Predictor:
    """One predictor pod's `/metrics`, kept by the serve step's own `Telemetry`.

    Each scrape first records the traffic of one interval: `requests` prediction requests, of which
    `errors` answer 500, taking `latency_s` each, and a few readiness probes that must not count.
    """

    telemetry: Telemetry = field(default_factory=Telemetry)
    requests: int = 40
    errors: int = 0
    latency_s: float = 0.03

    def record_interval(self) -> None:
        route = "/v2/models/{name}/infer"
        self.telemetry.requests.labels("POST", route, "200").inc(self.requests - self.errors)
        if self.errors:
            self.telemetry.requests.labels("POST", route, "500").inc(self.errors)
        for _ in range(self.requests):
            self.telemetry.latency.labels(route).observe(self.latency_s)
        self.telemetry.requests.labels("GET", "/v2/health/ready", "503").inc(3)


class MetricsHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        predictor: Predictor = self.server.predictor
        predictor.record_interval()
        data = prometheus_client.generate_latest(predictor.telemetry.registry)
        self.send_response(200)
        self.send_header("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def predictors(kserve_api):
    """(stable, canary) pods serving /metrics on 127.0.0.1 and 127.0.0.2 at the predictor's port.

    The stable pod belongs to revision 1, the canary pod to revision 2 (the first new revision).
    """
    _, api = kserve_api
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), MetricsHandler)]
    port = servers[0].server_address[1]
    servers.append(ThreadingHTTPServer(("127.0.0.2", port), MetricsHandler))
    for server in servers:
        server.predictor = Predictor()
        threading.Thread(target=server.serve_forever, daemon=True).start()
    api.obj["spec"]["predictor"]["containers"][0]["ports"][0]["containerPort"] = port
    api.pods = {revision(1): [("cityseg-predictor-00001-deployment-a", "127.0.0.1")],
                revision(2): [("cityseg-predictor-00002-deployment-b", "127.0.0.2")]}  # fmt: skip
    yield servers[0].predictor, servers[1].predictor
    for server in servers:
        server.shutdown()
        server.server_close()
