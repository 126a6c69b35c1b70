"""The object classifier's HTML report: scores per class, the confusion matrix and the misclassified crops."""

import base64
import html

from cityseg.components.crops.schema import CLASSES


def _cell(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def render_report(result: dict, errors: list[dict]) -> str:
    """A self-contained HTML page (crops inlined as PNG data URIs) of one evaluation."""
    rows = "".join(
        f"<tr><td>{name}</td><td>{_cell(e['precision'])}</td><td>{_cell(e['recall'])}</td>"
        f"<td>{_cell(e['f1'])}</td><td>{e['support']}</td></tr>"
        for name, e in result["per_class"].items()
    )
    header = "".join(f"<th>{name}</th>" for name in CLASSES)
    matrix = "".join(
        f"<tr><th>{CLASSES[i]}</th>" + "".join(f"<td>{count}</td>" for count in row) + "</tr>"
        for i, row in enumerate(result["confusion_matrix"])
    )
    crops = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(e["png"]).decode()}" width="96">'
        f"<figcaption>{html.escape(e['filename'])} #{e['instance_id']}<br>true <b>{e['true']}</b>, "
        f"predicted <b>{e['predicted']}</b> ({e['probability']:.2f})</figcaption></figure>"
        for e in errors
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>cityseg-objects: {result["split"]}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
figure{{display:inline-block;margin:6px;width:150px;font-size:12px}}</style></head>
<body><h1>Object classifier on {result["split"]}</h1>
<p>{result["examples"]} crops; accuracy {_cell(result["accuracy"])}, macro-F1 {_cell(result["macro_f1"])},
lowest recall {_cell(result["min_recall"])}. Model {html.escape(str(result["model_ref"]))}.</p>
<h2>Per class</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>crops</th></tr>
{rows}</table>
<h2>Confusion matrix</h2><p>Rows: true class; columns: predicted.</p>
<table><tr><th></th>{header}</tr>{matrix}</table>
<h2>Misclassified crops ({len(errors)} most confident shown)</h2>{crops or "<p>none</p>"}
</body></html>
"""
