"""`cityseg serve` and `cityseg app` refuse bad arguments with a message naming them, before serving."""

import pytest
from click.testing import CliRunner

from cityseg.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--model", "nowhere/model.keras"], "nowhere/model.keras: no such model file or folder"),
        (["serve", "--model", "runs:/abc/model", "--images", "no/such/dir"], "no/such/dir: no such folder"),
        (["serve", "--model", "models:/x@champion", "--poll-seconds", "0"], "0.0 is not in the range x>0"),
        (["serve", "--model", "models:/x@champion", "--max-upload-mb", "-1"], "-1.0 is not in the range x>0"),
        (["app", "--api", "127.0.0.1:8000"], "127.0.0.1:8000: the API URL must start with http://"),
        (["serve", "--model", "models:/x@champion", "--max-concurrent", "0"], "0 is not in the range x>=1"),
        (["app", "--read-timeout", "0"], "0.0 is not in the range x>0"),
        (["app", "--max-in-flight", "0"], "0 is not in the range x>=1"),
    ],
)
def test_bad_arguments_are_named(argv, message):
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_images_without_frames_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--model", "models:/x@champion", "--images", str(tmp_path)])
    assert result.exit_code == 1
    assert f"Error: {tmp_path}: no Cityscapes frames found" in result.output
