"""compile/submit/schedule through the real kfp.Client, against a recording stand-in of the KFP API.

The KFP API server cannot run here; this HTTP server on 127.0.0.1 answers the few calls the
client makes and records each request, so the tests check what a real cluster would receive.
"""

import threading
from http.server import ThreadingHTTPServer

import pytest
import yaml
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.pipelines.client import validate_cron
from tests.api_stand_in import JSONHandler

API = "/apis/v2beta1"
RECURRING = {
    "recurring_run_id": "rr-1",
    "display_name": "cityseg-retraining",
    "trigger": {"cron_schedule": {"cron": "0 0 3 * * 1"}},
    "status": "ENABLED",
}


class RecordingKFP(JSONHandler):
    """Answers healthz, experiments, runs and recurring runs like the KFP v2beta1 API."""

    def _record(self) -> dict:
        body = self.json_body()
        self.server.requests.append((self.command, self.path.split("?")[0], body))
        return body

    def do_GET(self):
        self._record()
        path = self.path.split("?")[0]
        if path == f"{API}/healthz":
            self.reply(200, {"multi_user": False})
        elif path == f"{API}/experiments":
            self.reply(200, {"experiments": [], "total_size": 0})
        elif path == f"{API}/recurringruns":
            self.reply(200, {"recurringRuns": [RECURRING], "total_size": 1})
        else:
            self.send_error(404)

    def do_POST(self):
        body = self._record()
        path = self.path.split("?")[0]
        if path == f"{API}/experiments":
            self.reply(200, {"experiment_id": "exp-1", "display_name": body["display_name"]})
        elif path == f"{API}/runs":
            self.reply(
                200, {"run_id": "run-1", "display_name": body["display_name"], "experiment_id": "exp-1"}
            )
        elif path == f"{API}/recurringruns":
            # As the KFP API server does: the stored run carries a status that follows the requested mode.
            status = {"ENABLE": "ENABLED", "DISABLE": "DISABLED"}[body["mode"]]
            self.reply(200, {**body, "recurring_run_id": "rr-1", "status": status})
        else:
            self.send_error(404)

    def do_DELETE(self):
        self._record()
        self.reply(200, {})


@pytest.fixture
def kfp_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingKFP)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server.requests
    server.shutdown()
    server.server_close()


def _posts(requests, path):
    return [body for method, url, body in requests if method == "POST" and url == f"{API}/{path}"]


def test_submit_sends_the_compiled_pipeline_with_typed_params(kfp_api):
    host, requests = kfp_api
    result = CliRunner().invoke(
        main,
        [
            "submit",
            "--host",
            host,
            "--param",
            "epochs=3",
            "--param",
            "model=unet",
            "--param",
            "min_dice=0.7",
            "--experiment",
            "nightly",
            "--run-name",
            "try-1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"submitted run run-1: {host}/#/runs/details/run-1" in result.output
    assert _posts(requests, "experiments") == [{"display_name": "nightly", "namespace": ""}]
    (run,) = _posts(requests, "runs")
    assert run["display_name"] == "try-1"
    assert run["experiment_id"] == "exp-1"
    assert run["runtime_config"]["parameters"] == {"epochs": 3, "model": "unet", "min_dice": 0.7}
    # A spec with kfp-kubernetes settings travels as {pipeline_spec, platform_spec}.
    spec = run["pipeline_spec"]["pipeline_spec"]
    assert spec["pipelineInfo"]["name"] == "cityseg-training"
    assert set(spec["root"]["dag"]["tasks"]) >= {"remap", "shard", "validate"}
    assert {"comp-train", "comp-evaluate", "comp-push"} <= set(spec["components"])
    assert (
        "exec-train"
        in run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    )


def test_submit_refuses_an_unknown_parameter_before_calling_the_api(kfp_api):
    host, requests = kfp_api
    result = CliRunner().invoke(main, ["submit", "--host", host, "--param", "epoch=3"])
    assert result.exit_code == 2
    assert "unknown pipeline parameter 'epoch'" in result.output
    assert requests == []


def test_schedule_creates_a_recurring_run_with_the_cron(kfp_api, tmp_path):
    host, requests = kfp_api
    package = tmp_path / "pipeline.yaml"
    CliRunner().invoke(main, ["compile", "--out", str(package)])
    result = CliRunner().invoke(
        main,
        [
            "schedule",
            "--host",
            host,
            "--cron",
            "0 0 3 * * 1",
            "--package",
            str(package),
            "--param",
            "epochs=20",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "scheduled cityseg-retraining (0 0 3 * * 1): recurring run rr-1, ENABLED, max_concurrency 1, "
        "no_catchup true" in result.output
    )
    (recurring,) = _posts(requests, "recurringruns")
    assert recurring["mode"] == "ENABLE"
    assert recurring["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * 1"}}
    assert recurring["display_name"] == "cityseg-retraining"
    assert recurring["experiment_id"] == "exp-1"
    assert recurring["max_concurrency"] == 1
    assert recurring["no_catchup"] is True
    assert recurring["runtime_config"]["parameters"] == {"epochs": 20}
    pipeline_spec, platform_spec = yaml.safe_load_all(package.read_text())
    assert recurring["pipeline_spec"] == {"pipeline_spec": pipeline_spec, "platform_spec": platform_spec}


def test_schedule_can_be_created_disabled_and_says_so(kfp_api, tmp_path):
    host, requests = kfp_api
    package = tmp_path / "pipeline.yaml"
    CliRunner().invoke(main, ["compile", "--out", str(package)])
    argv = ["schedule", "--host", host, "--cron", "0 0 3 * * 1", "--package", str(package), "--disabled"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert "recurring run rr-1, DISABLED, max_concurrency 1, no_catchup true" in result.output
    (recurring,) = _posts(requests, "recurringruns")
    assert (recurring["mode"], recurring["max_concurrency"], recurring["no_catchup"]) == ("DISABLE", 1, True)


def test_schedule_lists_and_deletes(kfp_api):
    host, requests = kfp_api
    listed = CliRunner().invoke(main, ["schedule", "--host", host, "--list"])
    assert listed.exit_code == 0, listed.output
    assert "rr-1  cityseg-retraining  0 0 3 * * 1  ENABLED" in listed.output
    deleted = CliRunner().invoke(main, ["schedule", "--host", host, "--delete", "rr-1"])
    assert deleted.exit_code == 0, deleted.output
    assert ("DELETE", f"{API}/recurringruns/rr-1", None) in requests


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 3 * * 1", "has 5 fields; KFP cron needs 6"),
        ("0 60 3 * * 1", "minutes: 60 is outside 0-59"),
        ("0 0 3 * * 8", "day of week: 8 is outside 0-6"),
        ("0 0 5-3 * * *", "hours: range 5-3 runs backwards"),
        ("0 0 3 ? * x", "day of week: 'X' is not a number"),
        ("? 0 3 * * 1", "seconds: '?' is only allowed in day of month and day of week"),
    ],
)
def test_bad_cron_is_refused_before_calling_the_api(kfp_api, cron, message):
    host, requests = kfp_api
    result = CliRunner().invoke(main, ["schedule", "--host", host, "--cron", cron])
    assert result.exit_code == 2
    assert message in result.output
    assert requests == []


@pytest.mark.parametrize(
    "cron", ["0 0 3 * * 1", "0 */15 * * * *", "0 30 2 1,15 JAN-JUN ?", "0 0 9 ? * MON-FRI"]
)
def test_good_crons_pass(cron):
    assert validate_cron(cron) == cron


def test_schedule_needs_exactly_one_action(kfp_api):
    host, _ = kfp_api
    result = CliRunner().invoke(main, ["schedule", "--host", host])
    assert result.exit_code == 2
    assert "give exactly one of --cron, --list and --delete" in result.output
