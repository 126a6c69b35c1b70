"""The deploy step's one door to the Kubernetes API: read and merge-patch one KServe InferenceService.

Everything else in the step is pure: it computes patches and reads status dicts. `InferenceServices`
talks to the in-cluster API server, or to `api_host` (any URL, e.g. `kubectl proxy`'s, or a test's).
"""

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
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


class InferenceServices:
    """Get and merge-patch InferenceServices through the official `kubernetes` client."""

    def __init__(self, api_host: str | None = None) -> None:
        from kubernetes import client, config

        if api_host:
            configuration = client.Configuration()
            configuration.host = api_host.rstrip("/")
            api_client = client.ApiClient(configuration)
        else:
            config.load_incluster_config()
            api_client = client.ApiClient()
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
