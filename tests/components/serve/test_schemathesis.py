"""Schemathesis against the running API's own OpenAPI schema: no 5xx, and every answer matches the schema."""

import re
import subprocess

from tests.components.serve.conftest import BIN


def test_api_conforms_to_its_schema(api_url, tmp_path):
    # Every check but positive_data_acceptance: the schema can only say "a binary file", and random
    # bytes that are no PNG or JPEG are rightly refused with a 4xx.
    argv = [
        str(BIN / "schemathesis"), "run", f"{api_url}/openapi.json", "--checks", "all",
        "--exclude-checks", "positive_data_acceptance", "--max-examples", "25", "--seed", "0",
        "--generation-database", "none", "--request-timeout", "30", "--no-color",
    ]  # fmt: skip
    result = subprocess.run(argv, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"(\d+) generated, \1 passed", result.stdout), result.stdout[-3000:]
