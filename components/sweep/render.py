"""The note's sections rendered as one self-contained HTML page and as GitHub Markdown."""

import base64
import html

from cityseg.components.sweep.sections import Bullets, Figure, Section, Table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
th { background: #f0f0f0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1.5em; font-size: 0.9em; }
dt { font-weight: bold; }
dd { margin: 0; }
img { max-width: 100%; }
"""


def _html_block(block) -> str:
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in block.rows
        )
        return f'<table id="{block.key}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    if isinstance(block, Figure):
        uri = "data:image/png;base64," + base64.b64encode(block.png).decode("ascii")
        return f'<img alt="{html.escape(block.alt)}" src="{uri}">'
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>"
    return f"<p>{html.escape(block)}</p>"


def html_page(sections: list[Section], title: str, facts: dict[str, str]) -> str:
    """The whole note as one HTML page, figures inlined."""
    facts_html = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items())
    body = "\n".join(
        f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>'
        + "".join(map(_html_block, s.blocks))
        + "</section>"
        for s in sections
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n<dl>{facts_html}</dl>\n"
        f"{body}\n</body></html>\n"
    )


def _cell(text: str) -> str:
    # A pipe would end the Markdown cell; a newline would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_block(block) -> str:
    if isinstance(block, Table):
        lines = [
            "| " + " | ".join(map(_cell, block.headers)) + " |",
            "|" + "|".join("---" for _ in block.headers) + "|",
            *("| " + " | ".join(map(_cell, row)) + " |" for row in block.rows),
        ]
        return "\n".join(lines)
    if isinstance(block, Figure):
        return f"![{block.alt}]({block.name})"
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    return block


def markdown(sections: list[Section], title: str, facts: dict[str, str]) -> str:
    """The whole note as GitHub Markdown; figures are the PNG files written beside it."""
    parts = [f"# {title}", "\n".join(f"- **{k}**: {v}" for k, v in facts.items())]
    for section in sections:
        parts.append(f"## {section.title}")
        parts.extend(_markdown_block(block) for block in section.blocks)
    return "\n\n".join(parts) + "\n"
