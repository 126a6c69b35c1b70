"""The deploy step's one door to the cluster: the KServe InferenceService, and its predictor pods' /metrics.

Everything else in the step is pure: it computes patches and reads status dicts and metrics text.
Both classes talk to the in-cluster API server, or to `api_host` (any URL, e.g. `kubectl proxy`'s,
or a test's).
"""

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
# The label Knative puts on every pod of a revision.
REVISION_LABEL = "serving.knative.dev/revision"
# Pod IPs are reached directly, never through an HTTP proxy from the environment.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubeError(RuntimeError):
    """The Kubernetes API refused a call or could not be reached; the message names the call."""


def current_namespace(default: str = "kubeflow") -> str:
    """The namespace of the pod this runs in (KFP runs tasks in the profile's namespace), else `default`."""
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return default


def _api_message(body: str | None) -> str:
    try:
        return json.loads(body or "")["message"]
    except (ValueError, KeyError, TypeError):
        return (body or "").strip()[:300]


def _api_client(api_host: str | None):
    from kubernetes import client, config

    if api_host:
        configuration = client.Configuration()
        configuration.host = api_host.rstrip("/")
        return client.ApiClient(configuration)
    config.load_incluster_config()
    return client.ApiClient()


class InferenceServices:
    """Get and merge-patch InferenceServices through the official `kubernetes` client."""

    def __init__(self, api_host: str | None = None) -> None:
        from kubernetes import client

        api_client = _api_client(api_host)
        self.host = api_client.configuration.host
        self._api = client.CustomObjectsApi(api_client)

    def _call(self, what: str, method, *args):
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return method(GROUP, VERSION, *args, _request_timeout=30)
        except ApiException as err:
            message = _api_message(err.body)
            raise KubeError(f"{what}: HTTP {err.status} {err.reason}: {message}") from err
        except HTTPError as err:
            raise KubeError(f"{what}: the Kubernetes API at {self.host} cannot be reached: {err}") from err

    def get(self, namespace: str, name: str) -> dict | None:
        """The InferenceService `namespace/name` with its status, or None when there is none."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self._call(
                f"get InferenceService {namespace}/{name}",
                self._api.get_namespaced_custom_object,
                namespace,
                PLURAL,
                name,
            )
        except KubeError as err:
            if isinstance(err.__cause__, ApiException) and err.__cause__.status == 404:
                return None
            raise

    def patch(self, namespace: str, name: str, patch: dict) -> dict:
        """Apply a JSON merge patch (RFC 7386: null deletes a field) to `namespace/name`; returns it."""
        log.info("patching InferenceService %s/%s: %s", namespace, name, json.dumps(patch, sort_keys=True))
        return self._call(
            f"patch InferenceService {namespace}/{name}",
            self._api.patch_namespaced_custom_object,
            namespace,
            PLURAL,
            name,
            patch,
        )


class RevisionMetrics:
    """The `/metrics` text of every running pod of a predictor revision, read at the pod's own address.

    Each pod counts its own requests, so a revision's figures are the sum over its pods; going
    through the revision's Service would reach one pod at random.
    """

    def __init__(self, api_host: str | None = None, timeout_s: float = 10.0) -> None:
        from kubernetes import client

        api_client = _api_client(api_host)
        self.host = api_client.configuration.host
        self.timeout_s = timeout_s
        self._core = client.CoreV1Api(api_client)

    def scrape(self, namespace: str, revision: str, port: int) -> dict[str, str]:
        """Pod name -> its /metrics text; a pod that does not answer is logged and left out.

        Raises:
            KubeError: the pods cannot be listed.
        """
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            pods = self._core.list_namespaced_pod(
                namespace,
                label_selector=f"{REVISION_LABEL}={revision}",
                field_selector="status.phase=Running",
                _request_timeout=30,
            )
        except ApiException as err:
            what = f"list the pods of revision {namespace}/{revision}"
            raise KubeError(f"{what}: HTTP {err.status} {err.reason}: {_api_message(err.body)}") from err
        except HTTPError as err:
            raise KubeError(f"the Kubernetes API at {self.host} cannot be reached: {err}") from err
        texts = {}
        for pod in pods.items:
            url = f"http://{pod.status.pod_ip}:{port}/metrics"
            try:
                with DIRECT.open(url, timeout=self.timeout_s) as response:
                    texts[pod.metadata.name] = response.read().decode()
            except (urllib.error.URLError, OSError) as err:
                log.warning(
                    "pod %s of revision %s: %s does not answer: %s", pod.metadata.name, revision, url, err
                )
        return texts
