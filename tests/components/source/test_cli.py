from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components.source.core import fingerprint
from tests.builders import write_cityscapes


def test_source_prints_the_fingerprint_the_pipeline_step_computes(tmp_path):
    data = str(write_cityscapes(tmp_path / "cityscapes", frames_per_city=1))
    result = CliRunner().invoke(main, ["source", "--data", data])
    assert result.exit_code == 0, result.output
    assert result.output == f"{fingerprint(data).digest}  {data} (folder, 8 files)\n"


def test_source_names_a_missing_folder(tmp_path):
    result = CliRunner().invoke(main, ["source", "--data", str(tmp_path / "absent")])
    assert result.exit_code == 1
    assert (
        result.output
        == f"Error: data: Cityscapes source {tmp_path / 'absent'} does not exist (no such folder)\n"
    )
