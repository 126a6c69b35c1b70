"""The deploy step locally: the `cityseg serve` running at `local_url` serves the new version.

The server has no route that loads a version on request. Started with
`--model models:/<name>@champion`, it polls the registry and swaps to the version `@champion` points
at, which push has already moved to the new one. So the step waits, up to `ready_timeout_s`, until
the server's `/model` reports the new version, then checks `/v2/health/ready`. A server that serves
anything else (a file, a pinned version, another alias) would never load it: that fails the step,
naming the fix. When nothing answers at `local_url` nothing is deployed, which is normal for a local
run without a server: the step says so plainly and returns an empty URL.
"""

import json
import logging
import time
import urllib.error
import urllib.request

from cityseg.components.deploy.config import DeployConfig
from cityseg.components.deploy.result import DeployError, DeployResult

log = logging.getLogger(__name__)
# The local server is reached directly, never through an HTTP proxy from the environment.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, timeout_s: float = 10.0) -> tuple[int, dict]:
    """(HTTP status, JSON body) of GET `url`; raises URLError/OSError when nothing answers."""
    try:
        with DIRECT.open(url, timeout=timeout_s) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        try:
            return err.code, json.loads(err.read() or b"{}")
        except ValueError:
            return err.code, {}


def _wait_for_version(config: DeployConfig, base: str, alias_ref: str) -> None:
    deadline = time.monotonic() + config.ready_timeout_s
    while True:
        try:
            status, info = _get(f"{base}/model")
        except (urllib.error.URLError, OSError) as err:
            raise DeployError(
                f"the server at {base} stopped answering while it was to load v{config.version}: {err}"
            ) from err
        if status == 200 and info.get("ref") != alias_ref:
            raise DeployError(
                f"the server at {base} serves {info.get('ref')}, not {alias_ref}, so it will not load "
                f"v{config.version}: restart it with `cityseg serve --model {alias_ref}`"
            )
        if status == 200 and info.get("version") == config.version:
            return
        if time.monotonic() >= deadline:
            serving = f"v{info.get('version')}" if status == 200 else "no model yet"
            error = info.get("last_error") or info.get("detail")
            raise DeployError(
                f"the server at {base} serves {serving}, not v{config.version}, after "
                f"{config.ready_timeout_s:g}s" + (f": {error}" if error else "")
            )
        time.sleep(config.poll_s)


def deploy_local(config: DeployConfig) -> DeployResult:
    """Wait until the local server serves `config.version` and is ready; an empty URL when none runs.

    Raises:
        DeployError: the server follows something other than `@champion`, did not swap in time, or
            is not ready.
    """
    alias_ref = f"models:/{config.name}@champion"
    base = config.local_url.rstrip("/")
    try:
        _get(f"{base}/healthz")
    except (urllib.error.URLError, OSError) as err:
        log.warning(
            "no server answers at %s (%s): v%s was not deployed locally; `cityseg serve --model %s` "
            "would serve it",
            base,
            getattr(err, "reason", err),
            config.version,
            alias_ref,
        )
        return DeployResult("local", "", config.version, alias_ref)
    _wait_for_version(config, base, alias_ref)
    status, body = _get(f"{base}/v2/health/ready")
    if status != 200:
        raise DeployError(f"the server at {base} serves v{config.version} but is not ready: {body}")
    log.info("the server at %s serves %s v%s and is ready", base, config.name, config.version)
    return DeployResult("local", base, config.version, alias_ref)
