from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components.sweep.presets import preset_params
from cityseg.pipelines.sweep_cli import apply_preset, compare


def run_compare(*args: str):
    return CliRunner().invoke(main, ["compare", *args])


def test_compare_rejects_an_unknown_model_before_any_step(tmp_path):
    result = run_compare("--models", "unet_mini,segformer", "--work-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Invalid value for --models: unknown ['segformer']" in result.output
    assert not (tmp_path / "kfp").exists()


def test_compare_rejects_a_size_that_one_model_cannot_take(tmp_path):
    # 72 is a multiple of unet_mini's stride 8 but not of unet's 16.
    result = run_compare(
        "--models", "unet_mini,unet", "--height", "72", "--width", "128", "--work-dir", str(tmp_path)
    )
    assert result.exit_code == 2
    assert "size 72x128 does not suit model 'unet'" in result.output


def test_compare_rejects_bad_augment_settings_repeats_and_presets(tmp_path):
    result = run_compare("--augment", "none,maybe", "--work-dir", str(tmp_path))
    assert result.exit_code == 2
    assert (
        "Invalid value for --augment: 'maybe' is not an augmentation setting; use none, all" in result.output
    )
    result = run_compare("--models", "unet_mini,unet_mini", "--work-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Invalid value for --models: ['unet_mini'] given more than once" in result.output
    result = run_compare("--preset", "huge", "--work-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "'huge' is not one of 'quick', 'full'" in result.output


def test_a_preset_fills_only_the_flags_left_at_their_default():
    ctx = compare.make_context("compare", ["--preset", "full", "--models", "unet", "--height", "128"])
    chosen = apply_preset(
        ctx, "full", {k: v for k, v in ctx.params.items() if k not in ("preset", "work_dir", "verbose")}
    )
    full = preset_params("full")
    assert chosen["models"] == ["unet"]
    assert chosen["height"] == 128
    for name in ("losses", "augment", "width", "synthetic_frames", "epochs"):
        assert chosen[name] == full[name], name
