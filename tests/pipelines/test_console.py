"""What a local run prints: one line per task start and end, full logs in files, a failure's tail."""

import io
import re
from pathlib import Path

import pytest
from kfp import dsl, local

from cityseg.pipelines.console import TAIL_LINES, TaskConsole, task_console


@dsl.component(base_image="python:3.11")
def chatty(lines: int) -> int:
    import sys

    from tqdm import tqdm

    for i in range(lines):
        print(f"line {i}")
    # A progress bar on a pipe: every redraw reaches the parent as a line of its own.
    for _ in tqdm(range(10), desc="work", file=sys.stderr, mininterval=0, miniters=1):
        pass
    print("done")
    return lines


@dsl.component(base_image="python:3.11")
def failing(lines: int):
    for i in range(lines):
        print(f"failing line {i}")
    raise SystemExit("the step gave up")


@dsl.pipeline(name="console-ok")
def ok_pipeline(lines: int = 50):
    first = chatty(lines=lines).set_caching_options(False)
    chatty(lines=first.output).set_caching_options(False)


@dsl.pipeline(name="console-failing")
def failing_pipeline(lines: int = 50):
    failing(lines=lines).set_caching_options(False)


@pytest.fixture
def kfp_local(tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))


def _events(printed: str) -> list[list[str]]:
    # "HH:MM:SS name event [seconds s]"
    return [line.split()[1:3] for line in printed.splitlines() if re.match(r"\d\d:\d\d:\d\d ", line)]


def test_a_run_prints_one_line_per_task_start_and_end_and_files_the_logs(kfp_local, tmp_path, capsys):
    with task_console(tmp_path / "logs"):
        ok_pipeline(lines=50)
    printed = capsys.readouterr().out
    assert _events(printed) == [
        ["chatty", "started"],
        ["chatty", "SUCCESS"],
        ["chatty-2", "started"],
        ["chatty-2", "SUCCESS"],
    ]
    assert "line 49" not in printed
    log = (tmp_path / "logs" / "chatty.log").read_text()
    assert "line 0\n" in log and "line 49\n" in log
    # Only the progress bar's last state is kept, in its place.
    assert re.search(r"line 49\n(\s*\n)?\s*work: 100%.*\n\s*done\n", log)
    assert " 50%|" not in log
    assert (tmp_path / "logs" / "chatty-2.log").exists()
    assert "console-ok" in (tmp_path / "logs" / "pipeline.log").read_text()


def test_a_failed_task_prints_the_end_of_its_log_and_its_path(kfp_local, tmp_path, capsys):
    with pytest.raises(RuntimeError, match="failing"), task_console(tmp_path / "logs"):
        failing_pipeline(lines=50)
    printed = capsys.readouterr().out
    assert _events(printed) == [["failing", "started"], ["failing", "FAILURE"]]
    tail = [line.strip() for line in printed.splitlines() if line.startswith("    ")]
    assert tail[-1] == f"full log: {tmp_path / 'logs' / 'failing.log'}"
    assert len(tail) == TAIL_LINES + 1
    assert "the step gave up" in printed
    assert "failing line 0" not in printed


def test_verbose_streams_every_line(kfp_local, tmp_path, capsys):
    with task_console(tmp_path / "logs", verbose=True):
        ok_pipeline(lines=3)
    printed = capsys.readouterr().out
    assert "line 2" in printed
    assert ["chatty", "SUCCESS"] in _events(printed)
    assert "%|" not in printed


def test_lines_outside_a_task_go_to_the_pipeline_log(tmp_path):
    terminal = io.StringIO()
    console = TaskConsole(Path(tmp_path), terminal)
    console.write(
        "before\nExecuting task \x1b[96m'x'\x1b[0m\ninside\nTask 'x' finished with status SUCCESS\nafter"
    )
    console.close()
    assert (tmp_path / "pipeline.log").read_text() == "before\nafter\n"
    assert (
        tmp_path / "x.log"
    ).read_text() == "Executing task 'x'\ninside\nTask 'x' finished with status SUCCESS\n"
    assert _events(terminal.getvalue()) == [["x", "started"], ["x", "SUCCESS"]]
