"""Small builders the deploy tests share: a config for the stand-in, its recorded patches, a registry."""

import uuid

from cityseg.components.deploy.config import DeployConfig


def config_for(host: str, **overrides) -> DeployConfig:
    settings = dict(version="7", target="kserve", namespace="kubeflow", api_host=host, poll_s=0.01)
    # No soak unless a test is about it: the soak has its own tests with real /metrics.
    defaults = dict(ready_timeout_s=5.0, soak_s=0.0, soak_min_requests=0)
    return DeployConfig(**{**defaults, **settings, **overrides})


def patches(api) -> list[dict]:
    return [body for method, _, _, body in api.requests if method == "PATCH"]


def _registered(client, name: str, champion: str, previous: str) -> None:
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, source="gs://bucket/model", run_id=None)
    client.set_registered_model_alias(name, "champion", champion)
    client.set_registered_model_alias(name, "previous", previous)


def serve_model(api, model: str) -> None:
    """Point the live predictor at `model`, as an earlier deploy (or the committed manifest) left it."""
    args = api.obj["spec"]["predictor"]["containers"][0]["args"]
    args[args.index("--model") + 1] = model


def registry(champion: str, previous: str | None):
    import mlflow

    client = mlflow.MlflowClient()
    name = f"deploy-{uuid.uuid4().hex[:12]}"
    _registered(client, name, champion, previous)
    return client, name


def model_arg(patch: dict) -> str:
    """The `--model` argument of the predictor container in a patch."""
    args = patch["spec"]["predictor"]["containers"][0]["args"]
    return args[args.index("--model") + 1]
