"""Which paths, modules and links a Markdown document names, and which of them the tree lacks.

- A path is the text of an inline code span (`` `components/defaults.py` ``) that holds no space, no
  scheme (`gs://`, `models:/`) and no option, and either has a `/` or ends in a source or document
  suffix. `<name>` and `{a,b}` in it stand for any name. Paths are relative to the repository root,
  except a bare file name, which may be anywhere in it.
- A module is a dotted name under `cityseg.components`, `cityseg.pipelines` or `cityseg.cli`
  (`cityseg.components.train.core`); it exists when its file or package does, or when all but its
  last part does (then the last part is a name inside the module).
- A link is the target of a relative Markdown link, relative to the document; anchors are ignored.
"""

import fnmatch
import re
import subprocess
from pathlib import Path, PurePosixPath

# Paths a run or a download creates, which the repository never holds, and why they are named.
RUN_TIME: dict[str, str] = {
    "work/": "the work folder, where runs, the MLflow store and benchmarks write (WORK_DIR)",
    "mlruns/": "MLflow's default local store, which the repository must not hold",
    "logs/": "a run folder's task logs, under work/runs/<run>/",
    "leftImg8bit/": "the images folder of a Cityscapes download",
    "gtFine/": "the labels folder of a Cityscapes download",
}
SUFFIXES = (".py", ".md", ".yaml", ".yml", ".json", ".cfg", ".toml", ".txt", ".sh", ".html")
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")
MODULE = re.compile(r"^cityseg\.(?:components|pipelines|cli)(?:\.\w+)*$")
PLACEHOLDER = re.compile(r"<[^>]*>|\{[^}]*\}")


def code_spans(text: str) -> list[str]:
    """The inline code spans of a Markdown text, fenced blocks left out."""
    return CODE_SPAN.findall(FENCE.sub("", text))


def is_path(span: str) -> bool:
    """Whether an inline code span names a file or folder of the tree (see the module docstring)."""
    if any(char in span for char in " :=$~*?@") or span.startswith(("-", "/", ".")):
        return False
    return "/" in span or span.endswith(SUFFIXES) or span in ("Dockerfile", "Makefile")


def tree(root: Path) -> set[str]:
    """Every file git tracks or would track under root (ignored ones left out), and the folders above them."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    folders = {parent.as_posix() for path in listed for parent in PurePosixPath(path).parents}
    return set(listed) | (folders - {"."})


def path_exists(span: str, paths: set[str]) -> bool:
    """Whether the path a span names is in paths; placeholders match any name, a bare name any folder."""
    pattern = PLACEHOLDER.sub("*", span).rstrip("/")
    if "/" not in span:
        return any(fnmatch.fnmatchcase(PurePosixPath(path).name, pattern) for path in paths)
    return any(fnmatch.fnmatchcase(path, pattern) for path in paths)


def module_exists(name: str, paths: set[str]) -> bool:
    """Whether a dotted `cityseg.X.Y` name is a module or package of the tree, or a name in one."""
    parts = name.split(".")[1:]
    for end in (len(parts), len(parts) - 1):
        base = "/".join(parts[:end])
        if end and (f"{base}.py" in paths or f"{base}/__init__.py" in paths):
            return True
    return False


def missing_paths(text: str, paths: set[str]) -> list[str]:
    """The paths and modules a document names in code spans that are not in paths."""
    missing = []
    for span in code_spans(text):
        if MODULE.match(span):
            if not module_exists(span, paths):
                missing.append(span)
        elif is_path(span) and not span.startswith(tuple(RUN_TIME)) and not path_exists(span, paths):
            missing.append(span)
    return missing


def missing_links(text: str, document: Path) -> list[str]:
    """The relative link targets of a document that do not exist beside it."""
    targets = [target.split("#")[0] for target in LINK.findall(text)]
    return [
        target
        for target in targets
        if target and "://" not in target and not target.startswith("mailto:")
        if not (document.parent / target).exists()
    ]
