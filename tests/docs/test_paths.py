"""The paths, modules and links that README.md, CONTRIBUTING.md and docs/*.md name exist in the tree."""

from pathlib import Path

import pytest

from tests.docs.paths import RUN_TIME, code_spans, missing_links, missing_paths, tree

REPO = Path(__file__).resolve().parents[2]
# The two documents a newcomer reads first name real paths; docs/*.md also name the files a step writes.
PATH_DOCUMENTS = [REPO / "README.md", REPO / "CONTRIBUTING.md"]
DOCUMENTS = [*PATH_DOCUMENTS, *sorted((REPO / "docs").glob("*.md"))]
TREE = {
    "components/defaults.py",
    "components/train/core.py",
    "components/train/cli.py",
    "components",
    "components/train",
    "tests/components/train/test_train.py",
}


def test_code_spans_leave_fenced_blocks_out():
    text = "See `a.py` and ``b``.\n```\n`c.py`\n```\nThen `d/`."
    assert code_spans(text) == ["a.py", "d/"]


def test_missing_paths_names_what_the_tree_lacks():
    text = (
        "Edit `components/defaults.py` or `defaults.py`, test in `tests/components/train/test_core.py`, "
        "each step in `components/<step>/core.py` and `components/{train,serve}/cli.py`; "
        "`cityseg.components.train.core.train` and `cityseg.components.images` are modules; "
        "runs write `work/runs/<run>/`; `gs://bucket/x.py`, `--out DIR`, `models:/cityseg@champion`, "
        "`cityseg train --help` and `/v2/health/live` are not paths; nor is `pipelines.yaml` in words."
    )
    assert missing_paths(text, TREE) == [
        "tests/components/train/test_core.py",
        "cityseg.components.images",
        "pipelines.yaml",
    ]


def test_missing_links_resolve_beside_the_document(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "gke.md").write_text("")
    text = "[GKE](gke.md#cluster), [here](#top), [web](https://example.com/x.md), [gone](serving.md)"
    assert missing_links(text, tmp_path / "docs" / "commands.md") == ["serving.md"]


@pytest.mark.parametrize("document", PATH_DOCUMENTS, ids=lambda path: path.name)
def test_every_path_a_document_names_exists(document):
    missing = missing_paths(document.read_text(), tree(REPO))
    assert not missing, (
        f"{document.name} names paths or modules that the tree lacks: {missing}. Fix the name, or, for a "
        f"path that only a run creates, add its folder to RUN_TIME ({', '.join(RUN_TIME)})."
    )


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(REPO).as_posix())
def test_every_link_and_module_a_document_names_exists(document):
    text = document.read_text()
    assert missing_links(text, document) == []
    modules = [span for span in missing_paths(text, tree(REPO)) if span.startswith("cityseg.")]
    assert modules == [], f"{document.relative_to(REPO)} names modules that do not exist: {modules}"
