r"""One self-contained HTML page: inline CSS, plotly.js embedded once, figures as JSON.

Safety: every string that can come from a user (run names, paths, settings,
hyper-parameters) goes through :func:`esc` (``html.escape``); JSON placed in a
``<script>`` goes through :func:`script_json`, which escapes ``<``, ``>``,
``&`` and the JS line separators as ``\uXXXX`` so no string can close the
script element. Nothing is loaded from the network.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
PLOTLY_CONFIG = {"responsive": True, "displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def esc(text) -> str:
    """HTML-escape any value's ``str`` (quotes included, safe in attributes)."""
    return html.escape(str(text), quote=True)


def script_json(text: str) -> str:
    """JSON text made safe inside ``<script>``: no ``<``, ``>``, ``&`` or U+2028/9 left raw."""
    for char, repl in _JSON_ESCAPES.items():
        text = text.replace(char, repl)
    return text


@dataclass
class Figure:
    """A figure slot: anchor id, heading, caption (plain text) and the plotly figure."""

    id: str
    heading: str
    caption: str
    figure: go.Figure


@dataclass
class Table:
    """A table: headers, rows of ``(display text, sort key)`` cells, optional row titles (tooltips)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[tuple[str, object]]]
    sortable: bool = True
    numeric: Sequence[bool] = ()
    clip: Sequence[bool] = ()  # long text cut to one line; the full text shows on hover


def table(t: Table) -> str:
    """HTML of a table; cells carry ``data-sort`` keys for the inline sorter."""
    cls = ' class="sortable"' if t.sortable else ""
    numeric = list(t.numeric) or [False] * len(t.headers)
    clip = list(t.clip) or [False] * len(t.headers)
    head = "".join(
        f'<th scope="col"{" class=num" if n else ""} title="click to sort">{esc(h)}</th>' if t.sortable
        else f"<th scope=\"col\">{esc(h)}</th>" for h, n in zip(t.headers, numeric)
    )
    body = []
    for row in t.rows:
        cells = []
        for (text, key), n, c in zip(row, numeric, clip):
            attrs = ' class="num"' if n else (f' class="clip" title="{esc(text)}"' if c else "")
            cells.append(f'<td{attrs} data-sort="{esc("" if key is None else key)}">{esc(text)}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure_block(fig: Figure) -> str:
    """A heading, the graph div, its JSON spec in a ``<script type=application/json>`` and the caption."""
    spec = script_json(fig.figure.to_json())
    return (
        f'<section class="figure" id="{esc(fig.id)}"><h3>{esc(fig.heading)}</h3>'
        f'<div class="plotly-graph-div" id="{esc(fig.id)}-plot" data-spec="{esc(fig.id)}-spec"></div>'
        f'<script type="application/json" id="{esc(fig.id)}-spec">{spec}</script>'
        f'<p class="caption">{esc(fig.caption)}</p></section>'
    )


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]], data: dict) -> str:
    """The whole document. ``sections``: ``(anchor, heading, inner HTML already escaped)``;
    ``data``: the report's numbers, embedded as JSON (``id="report-data"``) for reuse.
    """
    nav = "".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<section id="{esc(a)}"><h2>{esc(h)}</h2>{inner}</section>' for a, h, inner in sections)
    payload = script_json(json.dumps(data, allow_nan=False, separators=(",", ":")))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style>"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
        f"<header><h1>{esc(title)}</h1><p class=\"subtitle\">{esc(subtitle)}</p><nav>{nav}</nav></header>"
        f"<main>{body}</main>"
        f"<script type=\"application/json\" id=\"report-data\">{payload}</script>"
        f"<script>{_JS.replace('__CONFIG__', json.dumps(PLOTLY_CONFIG))}</script></body></html>\n"
    )


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d2433;
background:#fff}
header{padding:18px 28px 8px;border-bottom:1px solid #dde2ea;background:#f6f8fb}
h1{margin:0 0 4px;font-size:1.6em}
h2{margin:28px 0 10px;font-size:1.25em;border-bottom:1px solid #e6e9ef;padding-bottom:4px}
h3{font-size:1.05em;margin:18px 0 6px}.subtitle{margin:0 0 8px;color:#4a5568}
nav a{margin-right:14px;font-size:.92em;color:#0b5cad;text-decoration:none}nav a:hover{text-decoration:underline}
main{padding:0 28px 40px;max-width:1400px}
table{border-collapse:collapse;font-size:.86em;margin:6px 0 10px}
th,td{border:1px solid #e1e5ec;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f4f8;position:sticky;top:0}table.sortable th{cursor:pointer;user-select:none}
table.sortable th.asc::after{content:" \\25B2"}table.sortable th.desc::after{content:" \\25BC"}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.clip{min-width:12em;max-width:26em;white-space:normal;overflow-wrap:anywhere}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:8px 12px;margin:8px 0}
.caption{color:#4a5568;font-size:.88em;max-width:1000px}
pre{background:#f6f8fb;padding:8px 10px;font-size:.8em;overflow-x:auto;max-height:420px}
.wrap{overflow-x:auto}
"""

# Inline behaviour: draw every figure from its JSON spec; sort tables on header click.
_JS = """
(function(){
  var config = __CONFIG__;
  document.querySelectorAll('div.plotly-graph-div[data-spec]').forEach(function(div){
    var spec = JSON.parse(document.getElementById(div.getAttribute('data-spec')).textContent);
    Plotly.newPlot(div, spec.data, spec.layout, config).then(function(){ div.setAttribute('data-rendered', 'true'); });
  });
  function key(td, numeric){
    var raw = td.getAttribute('data-sort');
    if (raw === '') return null;
    if (!numeric) return raw.toLowerCase();
    var v = parseFloat(raw); return isNaN(v) ? null : v;
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    var ths = table.querySelectorAll('thead th');
    ths.forEach(function(th, col){
      th.addEventListener('click', function(){
        var asc = !th.classList.contains('asc');
        ths.forEach(function(h){ h.classList.remove('asc', 'desc'); });
        th.classList.add(asc ? 'asc' : 'desc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function(a, b){
          var numeric = th.classList.contains('num');
          var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
          if (x === null) return y === null ? 0 : 1;
          if (y === null) return -1;
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
})();
"""
