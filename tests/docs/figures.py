"""Which numbers in a document are figures, and which of them BENCHMARKS.md does not hold.

A figure is a number that reads as a measurement: one with a decimal point (`0.894`, `1.9`), or an
integer followed by a unit of time, size, rate or ratio (`184 s`, `2,086 MiB`, `950 frames/min`,
`99.9%`, `3x`). A figure is backed when the same number, written the same way (digits, commas and
decimals), stands as a number of its own in BENCHMARKS.md, followed by the same unit where it has one
(ratios and shares excepted): rounding it differently is a new figure.

Not figures:
- numbers inside a word, a path, a URL or a flag (`float16`, `e2-standard-8`, `?ref=2.5.0`, `--lr`);
- version numbers: three or more dotted parts (`2.5.0`), a number right after `v` (`v0.20`), or
  one after a name in VERSIONED (`Keras 3.15`, `pandas 3.1 to 2.3`);
- the value given to a command-line option (`--height 512`): an input of an example, not a result;
- sizes written as `HxW` (`96x192`): the `x` there joins two numbers.
"""

import re

# Names after which a number is a version, not a measurement: "Keras 3.15", "pandas 3.1 to 2.3".
VERSIONED = ("Python", "python3", "Keras", "TF", "TensorFlow", "kfp", "kserve", "KServe", "pandas", "psutil")
VERSION = re.compile(rf"\b(?:{'|'.join(VERSIONED)})`?(?: is)? v?\d+(?:\.\d+)+(?: to \d+(?:\.\d+)+)?")

UNITS = (
    "images/s|frames/s|frames/min|requests/s|img/s|ms/image|CPU-s|"
    "ms|us|µs|s|sec|seconds|min|minutes|h|hours|KiB|MiB|GiB|kB|KB|MB|GB"
)
# A number not glued to a word, path, flag or another number; then its unit, if any.
NUMBER = re.compile(
    r"(?<![\w.,/@=:?\-])(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?![\w.]*\.\d)"  # not the first parts of a dotted version such as 2.5.0
    rf"(?P<unit>\s?(?:{UNITS})(?![\w/])|\s?%|x(?![a-wyz_]))?"
)
OPTION_VALUE = re.compile(r"--[\w-]+[ =]$")


def figures(text: str) -> list[str]:
    """The figures of a Markdown text, in order, as written (number and unit), versions left out."""
    text = VERSION.sub(lambda match: " " * len(match[0]), text)
    found = []
    for match in NUMBER.finditer(text):
        number, unit = match["number"], match["unit"]
        before = text[: match.start()]
        if before.endswith("v") or OPTION_VALUE.search(before[-60:]):
            continue
        if unit and unit.strip() == "x" and re.match(r"\d", text[match.end() :]):
            continue  # a size, HxW
        if "." in number or unit:
            found.append(f"{number}{unit or ''}")
    return found


def benchmark_figures(text: str) -> set[str]:
    """Every number BENCHMARKS.md writes, as written, alone and with the unit that follows it."""
    numbers = re.finditer(
        rf"(?<![\w.,])(\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?)(?:\s?({UNITS})(?![\w/]))?", text
    )
    found = set()
    for match in numbers:
        found.add(match[1])
        if match[2]:
            found.add(f"{match[1]} {match[2]}")
    return found


def unbacked(text: str, benchmarks: str) -> list[str]:
    """The figures of text that BENCHMARKS.md (given as its text) does not write.

    A figure with a unit of time, size or rate must stand there with the same unit; a ratio (`x`) or a
    share (`%`) needs only its number, since BENCHMARKS.md writes ratios bare.
    """
    known = benchmark_figures(benchmarks)
    missing = []
    for figure in figures(text):
        match = NUMBER.match(figure)
        unit = (match["unit"] or "").strip()
        key = match["number"] if unit in ("", "x", "%") else f"{match['number']} {unit}"
        if key not in known:
            missing.append(figure)
    return missing
