"""The API reference page: the OpenAPI dict of :mod:`ingress.openapi` rendered as HTML.

One self-contained page (inline CSS, no script, no fonts, no CDN), so it works on
machines without internet. Pure: a dict in, a string out. Every text taken from the
document is HTML-escaped first; a tiny Markdown subset (paragraphs, ``**bold**``,
```code```, tables) is applied afterwards.

Anchors: ``#op-<operationId>`` per operation, ``#schema-<Name>`` per schema,
``#statuses`` for the payment status table, ``#tag-<tag>`` per group.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

_METHODS: Final = ("get", "post", "put", "patch", "delete")
_CODE: Final = re.compile(r"`([^`]+)`")
_BOLD: Final = re.compile(r"\*\*([^*]+)\*\*")
_SLUG: Final = re.compile(r"[^A-Za-z0-9_-]+")

_CSS: Final = """
:root { --fg:#1d232a; --muted:#5b6570; --line:#dde2e7; --bg:#fff; --side:#f6f8fa;
        --get:#1f6feb; --post:#1a7f37; --delete:#cf222e; --code:#f3f4f6; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--fg); background:var(--bg); }
nav { position:fixed; top:0; bottom:0; left:0; width:270px; overflow-y:auto;
      background:var(--side); border-right:1px solid var(--line); padding:18px 14px; }
nav h2 { font-size:12px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted);
         margin:18px 0 6px; }
nav a { display:block; color:var(--fg); text-decoration:none; padding:2px 4px;
        border-radius:4px; font-size:13.5px; }
nav a:hover { background:#e9edf1; }
main { margin-left:270px; padding:24px 40px 80px; max-width:1100px; }
h1 { margin-top:0; } h2 { border-bottom:1px solid var(--line); padding-bottom:6px;
     margin-top:44px; } h3 { margin:0; font-size:17px; }
code { background:var(--code); padding:1px 5px; border-radius:4px;
       font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
pre { background:var(--code); padding:10px; border-radius:6px; overflow-x:auto; }
table { border-collapse:collapse; width:100%; margin:8px 0 16px; font-size:14px; }
th, td { border:1px solid var(--line); padding:6px 8px; text-align:left; vertical-align:top; }
th { background:var(--side); font-weight:600; }
.op { border:1px solid var(--line); border-radius:8px; padding:16px 18px; margin:18px 0; }
.op-head { display:flex; gap:10px; align-items:center; flex-wrap:wrap; }
.method { color:#fff; font:700 12px/1 ui-monospace,monospace; padding:5px 8px;
          border-radius:4px; text-transform:uppercase; }
.m-get { background:var(--get); } .m-post { background:var(--post); }
.m-delete { background:var(--delete); } .m-put, .m-patch { background:#9a6700; }
.path { font:600 15px ui-monospace,SFMono-Regular,Menlo,monospace; }
.muted { color:var(--muted); } .badge { font-size:12px; border:1px solid var(--line);
         border-radius:10px; padding:1px 8px; color:var(--muted); }
h4 { margin:16px 0 4px; font-size:13px; text-transform:uppercase; letter-spacing:.05em;
     color:var(--muted); }
a { color:var(--get); } .req { color:var(--delete); font-size:12px; }
td p, li p { margin:0 0 4px; } td p:last-child { margin-bottom:0; }
@media (max-width: 800px) { nav { position:static; width:auto; height:auto; }
  main { margin-left:0; padding:16px; } }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _inline(text: str) -> str:
    """Escape, then apply the Markdown inline subset (code, bold)."""
    out = _esc(text)
    out = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", out)
    return _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", out)


def _table_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def markdown(text: str) -> str:
    """Paragraphs, tables (``| a | b |`` with a ``| --- |`` line), bold and code."""
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        if all(line.lstrip().startswith("|") for line in lines) and len(lines) >= 2:
            head, body = _table_row(lines[0]), lines[2:]
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _table_row(line)) + "</tr>"
                for line in body
            )
            header = "".join(f"<th>{_inline(c)}</th>" for c in head)
            blocks.append(f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            blocks.append("<p>" + _inline(" ".join(line.strip() for line in lines)) + "</p>")
    return "\n".join(blocks)


def _slug(text: str) -> str:
    return _SLUG.sub("-", text).strip("-").lower()


class _Renderer:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.doc = document
        self.components = document.get("components", {})

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow local ``$ref`` pointers (``#/components/<kind>/<name>``)."""
        seen = 0
        while "$ref" in node and seen < 16:
            kind, name = node["$ref"].split("/")[-2:]
            node = self.components[kind][name]
            seen += 1
        return node

    # schema summaries ---------------------------------------------------------------

    def type_of(self, schema: Mapping[str, Any]) -> str:
        """A one-line HTML description of a schema's type and constraints."""
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return f'<a href="#schema-{_esc(name)}">{_esc(name)}</a>'
        for key, word in (("oneOf", "one of"), ("anyOf", "any of"), ("allOf", "all of")):
            if key in schema:
                base = schema.get("type")
                parts = [
                    self.type_of({"type": base, **part})
                    if isinstance(base, str) and "type" not in part and "$ref" not in part
                    else self.type_of(part)
                    for part in schema[key]
                ]
                return f"{word}: " + " | ".join(parts)
        kind = schema.get("type", "any")
        kinds = kind if isinstance(kind, list) else [kind]
        text = " or ".join(_esc(k) for k in kinds)
        if "array" in kinds and "items" in schema:
            text = f"array of {self.type_of(schema['items'])}"
            if "null" in kinds:
                text += " or null"
        notes = []
        if "format" in schema:
            notes.append(_esc(schema["format"]))
        if "const" in schema:
            notes.append(f"always <code>{_esc(_json(schema['const']))}</code>")
        if "enum" in schema:
            values = ", ".join(f"<code>{_esc(_json(v))}</code>" for v in schema["enum"])
            notes.append(f"one of {values}")
        for key, word in (
            ("minimum", "min"),
            ("maximum", "max"),
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("minItems", "min items"),
            ("maxItems", "max items"),
            ("maxProperties", "max keys"),
            ("default", "default"),
        ):
            if key in schema:
                notes.append(f"{word} {_esc(_json(schema[key]))}")
        if "pattern" in schema:
            notes.append(f"pattern <code>{_esc(schema['pattern'])}</code>")
        if schema.get("additionalProperties") is False:
            notes.append("no other fields")
        elif isinstance(schema.get("additionalProperties"), Mapping):
            notes.append(f"values: {self.type_of(schema['additionalProperties'])}")
        return text + (f" <span class=muted>({'; '.join(notes)})</span>" if notes else "")

    def field_rows(self, schema: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[str]:
        """Table rows for an object's fields, nested objects as ``parent.child``."""
        rows: list[str] = []
        if depth > 4:
            return rows
        for part in schema.get("allOf", []):
            rows += self.field_rows(self.resolve(part), prefix, depth)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            full = prefix + name
            need = '<span class="req">required</span>' if name in required else ""
            desc = markdown(prop.get("description", "")) if "description" in prop else ""
            rows.append(
                f"<tr><td><code>{_esc(full)}</code> {need}</td><td>{self.type_of(prop)}</td>"
                f"<td>{desc}</td></tr>"
            )
            inner = self._inner_object(prop)
            if inner is not None:
                rows += self.field_rows(inner, full + ".", depth + 1)
        return rows

    def _inner_object(self, prop: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if "$ref" in prop:
            return None  # has its own section
        for option in prop.get("oneOf", []):
            if "properties" in option:
                return option
        return prop if "properties" in prop else None

    def fields_table(self, schema: Mapping[str, Any]) -> str:
        rows = self.field_rows(schema)
        if not rows:
            return f"<p>{self.type_of(schema)}</p>"
        return (
            "<table><thead><tr><th>Field</th><th>Type</th><th>Description</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    # operations -----------------------------------------------------------------------

    def operations(self) -> list[tuple[str, str, Mapping[str, Any]]]:
        return [
            (path, method, item[method])
            for path, item in self.doc.get("paths", {}).items()
            for method in _METHODS
            if method in item
        ]

    def parameters(self, op: Mapping[str, Any]) -> str:
        params = [self.resolve(p) for p in op.get("parameters", [])]
        if not params:
            return ""
        rows = "".join(
            f"<tr><td><code>{_esc(p['name'])}</code>"
            f"{' <span class=req>required</span>' if p.get('required') else ''}</td>"
            f"<td>{_esc(p['in'])}</td><td>{self.type_of(p.get('schema', {}))}</td>"
            f"<td>{markdown(p.get('description', ''))}</td></tr>"
            for p in params
        )
        return (
            "<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th>"
            f"<th>Description</th></tr></thead><tbody>{rows}</tbody></table>"
        )

    def request_body(self, op: Mapping[str, Any]) -> str:
        body = op.get("requestBody")
        if body is None:
            return ""
        out = ["<h4>Request body</h4>"]
        needed = "required" if body.get("required") else "optional"
        for media, content in body.get("content", {}).items():
            schema = content.get("schema", {})
            out.append(f"<p><code>{_esc(media)}</code>, {needed}: {self.type_of(schema)}</p>")
            out.append(self.fields_table(self.resolve(schema)))
        return "".join(out)

    def responses(self, op: Mapping[str, Any]) -> str:
        rows = []
        for code, raw in op.get("responses", {}).items():
            response = self.resolve(raw)
            bodies = ", ".join(
                f"<code>{_esc(media)}</code> {self.type_of(content.get('schema', {}))}"
                for media, content in response.get("content", {}).items()
            )
            headers = ", ".join(
                f"<code>{_esc(name)}</code>" for name in response.get("headers", {})
            )
            rows.append(
                f"<tr><td><strong>{_esc(code)}</strong></td>"
                f"<td>{markdown(response.get('description', ''))}</td>"
                f"<td>{bodies or '-'}</td><td>{headers or '-'}</td></tr>"
            )
        return (
            "<h4>Responses</h4><table><thead><tr><th>Status</th><th>Meaning</th><th>Body</th>"
            f"<th>Headers</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def operation(self, path: str, method: str, op: Mapping[str, Any]) -> str:
        anchor = "op-" + _slug(op.get("operationId", f"{method}-{path}"))
        security = op.get("security", self.doc.get("security", []))
        auth = "bearer token" if security else "no token"
        return (
            f'<section class="op" id="{_esc(anchor)}"><div class="op-head">'
            f'<span class="method m-{_esc(method)}">{_esc(method)}</span>'
            f'<span class="path">{_esc(path)}</span>'
            f'<a href="#{_esc(anchor)}" class="muted">#</a>'
            f'<span class="badge">{_esc(auth)}</span></div>'
            f"<h3>{_esc(op.get('summary', ''))}</h3>"
            f"{markdown(op.get('description', ''))}"
            f"{self.parameters(op)}{self.request_body(op)}{self.responses(op)}</section>"
        )

    # page -------------------------------------------------------------------------------

    def page(self) -> str:
        info = self.doc.get("info", {})
        title = info.get("title", "API")
        ops = self.operations()
        tags: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
        for path, method, op in ops:
            tags.setdefault((op.get("tags") or ["Other"])[0], []).append((path, method, op))
        order = [t["name"] for t in self.doc.get("tags", []) if t["name"] in tags]
        order += [t for t in tags if t not in order]
        tag_text = {t["name"]: t.get("description", "") for t in self.doc.get("tags", [])}

        nav = [f"<strong>{_esc(title)}</strong> <span class=muted>{_esc(info.get('version'))}"]
        nav.append(
            '</span><h2>Overview</h2><a href="#overview">Introduction</a>'
            '<a href="#statuses">Payment statuses</a><a href="#errors">Errors</a>'
        )
        sections = []
        for tag in order:
            nav.append(f"<h2>{_esc(tag)}</h2>")
            items = []
            for path, method, op in tags[tag]:
                anchor = "op-" + _slug(op.get("operationId", f"{method}-{path}"))
                nav.append(
                    f'<a href="#{_esc(anchor)}"><code>{_esc(method.upper())}</code> '
                    f"{_esc(op.get('summary', path))}</a>"
                )
                items.append(self.operation(path, method, op))
            sections.append(
                f'<h2 id="tag-{_esc(_slug(tag))}">{_esc(tag)}</h2>'
                f"{markdown(tag_text.get(tag, ''))}{''.join(items)}"
            )
        schemas = self.components.get("schemas", {})
        nav.append("<h2>Schemas</h2>")
        schema_sections = []
        for name, schema in schemas.items():
            nav.append(f'<a href="#schema-{_esc(name)}">{_esc(name)}</a>')
            schema_sections.append(
                f'<section id="schema-{_esc(name)}"><h3>{_esc(name)}</h3>'
                f"{markdown(schema.get('description', ''))}"
                f"{self.fields_table(schema) if _has_fields(schema) else ''}"
                f"{self._enum_line(schema)}</section>"
            )
        status = schemas.get("PaymentStatus", {})
        error = schemas.get("Error", {})
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<nav>{''.join(nav)}</nav><main>"
            f'<h1 id="overview">{_esc(title)}</h1>'
            f"<p class=muted>{_esc(info.get('summary', ''))} OpenAPI "
            f"{_esc(self.doc.get('openapi'))}: "
            '<a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p>'
            f"{markdown(info.get('description', ''))}"
            f'<h2 id="statuses">Payment statuses</h2>{markdown(status.get("description", ""))}'
            f'<h2 id="errors">Errors</h2>{markdown(error.get("description", ""))}'
            f"{self.fields_table(error)}"
            f"{''.join(sections)}"
            f'<h2 id="schemas">Schemas</h2>{"".join(schema_sections)}'
            "</main></body></html>\n"
        )

    def _enum_line(self, schema: Mapping[str, Any]) -> str:
        if "enum" not in schema or "|" in schema.get("description", ""):
            return ""
        return f"<p>{self.type_of(schema)}</p>"


def _has_fields(schema: Mapping[str, Any]) -> bool:
    return "properties" in schema or "allOf" in schema


def _json(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def render_docs(document: Mapping[str, Any]) -> str:
    """The reference page of an OpenAPI 3.1 document (a dict, as built by ingress.openapi)."""
    return _Renderer(document).page()


def anchors(document: Mapping[str, Any]) -> Iterable[str]:
    """Every operation anchor the page has (``op-<operationId>``), for tests and links."""
    for _path, _method, op in _Renderer(document).operations():
        yield "op-" + _slug(op["operationId"])
