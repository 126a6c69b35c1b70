"""The deploy step locally: a real `cityseg serve` that follows @champion, or no server at all."""

import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components.deploy.config import DeployConfig
from cityseg.components.deploy.core import deploy
from cityseg.components.deploy.result import DeployError
from tests.components.serve.conftest import BIN
from tests.conftest import free_port, start_server, stop_server


def test_with_no_server_at_the_url_nothing_is_deployed_and_the_step_says_so(caplog):
    url = f"http://127.0.0.1:{free_port()}"
    result = deploy(DeployConfig(version="4", local_url=url))
    assert result.outputs() == ("", "4", "")
    assert f"no server answers at {url}" in caplog.text and "v4 was not deployed locally" in caplog.text
    output = CliRunner().invoke(main, ["deploy", "--version", "4", "--local-url", url]).output
    assert output == f"cityseg v4 was not deployed: no server answers at {url}\n"


@pytest.mark.slow
def test_a_server_that_follows_champion_serves_the_new_version(mlflow_uri, registered_pair, tmp_path):
    import mlflow

    name, (first, second) = registered_pair
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "champion", first)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(BIN / "cityseg"), "serve", "--model", f"models:/{name}@champion", "--port", str(port),
        "--poll-seconds", "0.5", "--tracking-uri", mlflow_uri, "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    server = start_server(argv, f"{url}/readyz", tmp_path / "serve.log", timeout_s=180)
    try:
        # What push does: @champion moves to the new version; the deploy step then waits for the swap.
        client.set_registered_model_alias(name, "champion", second)
        settings = dict(name=name, local_url=url, poll_s=0.2, tracking_uri=mlflow_uri)
        result = deploy(DeployConfig(version=second, ready_timeout_s=120, **settings))
        assert result.outputs() == (url, second, "")
        assert result.model_ref == f"models:/{name}@champion"
        with pytest.raises(DeployError) as err:
            deploy(DeployConfig(version=first, ready_timeout_s=0.5, **settings))
        assert str(err.value) == f"the server at {url} serves v{second}, not v{first}, after 0.5s"
    finally:
        stop_server(server)
