from click.testing import CliRunner

from cityseg.cli import main


def compare(*args: str):
    return CliRunner().invoke(main, ["compare", *args])


def test_compare_rejects_an_unknown_model_before_any_step(tmp_path):
    result = compare("--models", "unet_mini,segformer", "--work-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Invalid value for --models: unknown model 'segformer'" in result.output
    assert not (tmp_path / "kfp").exists()


def test_compare_rejects_a_size_that_one_model_cannot_take(tmp_path):
    # 72 is a multiple of unet_mini's stride 8 but not of unet's 16.
    result = compare(
        "--models", "unet_mini,unet", "--height", "72", "--width", "128", "--work-dir", str(tmp_path)
    )
    assert result.exit_code == 2
    assert "size 72x128 does not suit model 'unet'" in result.output


def test_compare_rejects_bad_augment_and_repeated_models(tmp_path):
    result = compare("--augment", "on,maybe", "--work-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Invalid value for --augment: ['maybe'] not understood; use on, off or on,off" in result.output
    result = compare("--models", "unet_mini,unet_mini", "--work-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Invalid value for --models: ['unet_mini'] given more than once" in result.output
    result = compare("--losses", ",", "--work-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "give at least one value" in result.output
