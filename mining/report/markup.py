"""HTML building blocks of the run report: escaped text, numeric cells, tables, figures,
sections, summary cards and the page shell (inline CSS, a Content-Security-Policy that
forbids scripts and requests).

Every number a test reads sits in an element with a ``data-metric`` attribute (dotted
name, e.g. ``funnel.accepted_pairs``, ``locale.en-US.turns``) and its raw value in
``data-value``; the text shows it formatted (``20,031``). User text (utterances, intents,
reasons, config values) goes through :func:`e` (:func:`html.escape`).
"""
from __future__ import annotations

import html

import numpy as np

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#222;
max-width:1120px;margin:0 auto;padding:16px 24px 48px;background:#fff}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px}.muted{color:#777;font-weight:normal}.note{color:#555;font-size:12.5px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}th,td{padding:3px 10px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}thead th{background:#f5f6f8;font-weight:600}td.num{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}tfoot tr.total th,tfoot tr.total td{font-weight:600;
border-top:2px solid #ccc}table.kv th{font-weight:500;color:#555;width:180px}
td.utt{max-width:560px;word-break:break-word}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}.card{border:1px solid #e2e2e2;border-radius:6px;
padding:8px 14px;min-width:120px}.card .v{font-size:20px;font-weight:600}.card .k{color:#666;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:4px 24px}
figure{margin:8px 0}figure svg{max-width:100%;height:auto}figcaption{font-size:12px;color:#666}
details pre{background:#f7f7f7;padding:8px;font-size:12px;max-height:480px;overflow:auto}
code{background:#f3f3f3;padding:0 3px}
"""
# no script, no network, inline styles only; data: images in case a future plot is a PNG
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def e(value) -> str:
    """``str(value)`` escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def fmt(value) -> str:
    """A value as shown: ints with thousands separators, floats with 3 decimals."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def raw(value) -> str:
    """A value as stored in ``data-value``: ``repr`` of floats (round-trips), else ``str``."""
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    return repr(value) if isinstance(value, float) else str(value)


def td(value, metric: str | None = None, text: str | None = None) -> str:
    """A numeric cell: formatted text; ``data-metric`` + raw ``data-value`` when named."""
    attrs = f' data-metric="{e(metric)}" data-value="{e(raw(value))}"' if metric else ""
    return f'<td class="num"{attrs}>{e(text if text is not None else fmt(value))}</td>'


def table(head: list[str], rows: list[str], tid: str | None = None, foot: str = "") -> str:
    """A table: escaped header cells, ``rows`` (``<tr>`` HTML), optional id and footer rows."""
    ths = "".join(f"<th>{e(h)}</th>" for h in head)
    idattr = f' id="{e(tid)}"' if tid else ""
    tfoot = f"<tfoot>{foot}</tfoot>" if foot else ""
    return f"<table{idattr}><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody>{tfoot}</table>"


def figure(name: str, svg: str, caption: str) -> str:
    """A ``<figure data-plot="name">`` holding an inline SVG and its caption."""
    return (f'<figure data-plot="{e(name)}">{svg}<figcaption>{e(caption)}</figcaption></figure>')


def section(sid: str, title: str, body: str) -> str:
    """A ``<section id="sid">`` with its ``<h2>`` title."""
    return f'<section id="{e(sid)}"><h2>{e(title)}</h2>{body}</section>'


def cards(items) -> str:
    """The summary cards: one per ``(label, value, metric)``."""
    divs = "".join(f'<div class="card"><div class="v" data-metric="{e(m)}" data-value="{e(raw(v))}">'
                   f'{e(fmt(v))}</div><div class="k">{e(k)}</div></div>' for k, v, m in items)
    return f'<div id="summary" class="cards">{divs}</div>'


def page(version: str, summary: str, sections: list[str]) -> str:
    """The whole document: head (charset, CSP, viewport, title, CSS), heading, summary and
    sections, in order."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>Mining run report {e(version)}</title><style>{CSS}</style></head>\n<body>'
            f'<h1>Mining run report <span class="muted">{e(version)}</span></h1>'
            f'{summary}{"".join(sections)}</body></html>\n')


def reason_table(title: str, prefix: str, counts: dict, sort: bool = True) -> str:
    """A titled table of ``{reason: count}``, each count a ``data-metric`` ``<prefix>.<reason>``."""
    items = sorted(counts.items()) if sort else counts.items()
    rows = [f'<tr data-reason="{e(k)}"><th>{e(k)}</th>{td(int(v), f"{prefix}.{k}")}</tr>' for k, v in items]
    rows = rows or ['<tr><th class="muted">none</th><td class="num">0</td></tr>']
    body = table(["reason", "count"], rows)
    return f'<div class="reasons" data-reasons="{e(prefix)}"><h3>{e(title)}</h3>{body}</div>'
