"""Bad pipeline parameters fail with a clear message before any step runs."""

import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.pipelines.local import default_params
from cityseg.pipelines.validation import ParameterError, validate_params


def _run(tmp_path, *args):
    return CliRunner().invoke(main, ["run", "--work-dir", str(tmp_path / "work"), *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "segformer"],
            "Invalid value for --model: unknown model 'segformer'; choose one of unet_mini,",
        ),
        (["--loss", "lovasz"], "Invalid value for --loss: unknown loss 'lovasz'"),
        (
            ["--height", "100"],
            "Invalid value for --height / --width: size 100x192 does not suit model 'unet'",
        ),
        (
            ["--model", "mobilenetv2_unet", "--width", "240"],
            "size 96x240 does not suit model 'mobilenetv2_unet'",
        ),
        (["--workers", "0"], "Invalid value for --workers: must be at least 1, got 0"),
        (["--augment", "flip,mixup"], "Invalid value for --augment: unknown augmentation mixup"),
        (["--class-weighting", "sqrt"], "Invalid value for --class-weighting: unknown weighting 'sqrt'"),
        (["--min-dice", "1.5"], "Invalid value for --min-dice: must lie in [0, 1], got 1.5"),
        (["--select-fraction", "1"], "Invalid value for --select-fraction: must be in [0, 1), got 1.0"),
        (
            ["--canary-traffic-percent", "0"],
            "Invalid value for --canary-traffic-percent: must be 1..100, got 0",
        ),
        (["--ready-timeout-s", "0"], "Invalid value for --ready-timeout-s: must be positive, got 0.0"),
        (["--data", "/nonexistent/cityscapes"], "Cityscapes source /nonexistent/cityscapes does not exist"),
    ],
)
def test_bad_parameters_fail_before_any_step(tmp_path, args, message):
    result = _run(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "work" / "kfp").exists()


def test_a_gs_source_that_does_not_exist_is_refused(gcs_emulator, tmp_path):
    bucket = gcs_emulator()
    result = _run(tmp_path, "--data", f"{bucket}/no/cityscapes/here")
    assert result.exit_code == 2, result.output
    assert (
        f"Cityscapes source {bucket}/no/cityscapes/here does not exist (no such gs:// prefix)"
        in result.output
    )


def test_an_existing_gs_source_passes(gcs_emulator):
    from cityseg.components import storage

    bucket = gcs_emulator()
    storage.write_bytes(f"{bucket}/cityscapes/gtFine/train/a/x.png", b"x")
    validate_params({**default_params(), "data": f"{bucket}/cityscapes"})


def test_an_unreachable_mlflow_server_fails_before_any_step(tmp_path):
    result = _run(tmp_path, "--mlflow-tracking-uri", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "MLflow tracking server http://127.0.0.1:9 cannot be reached" in result.output
    assert not (tmp_path / "work" / "kfp").exists()


def test_parameter_error_names_the_parameter():
    with pytest.raises(ParameterError, match=r"^shards: must be at least 1, got 0$") as info:
        validate_params({**default_params(), "shards": 0})
    assert info.value.param == "shards"
