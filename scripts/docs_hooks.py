"""mkdocs hooks: the API reference, rendered from the OpenAPI schema the code serves.

At build time `manage.py spectacular` writes the schema (the same one `/api/v1/schema/`
serves, validated, warnings refused) into a throwaway data directory; this hook adds it to
the site as `reference/openapi.json` and renders it as `reference/openapi.md`. Nothing is
fetched: the page is plain Markdown, so it reads offline and search finds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
PAGE = "reference/openapi.md"
SCHEMA = "reference/openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    schema = openapi_schema()
    files.append(File.generated(config, SCHEMA, content=json.dumps(schema, indent=2)))
    files.append(File.generated(config, PAGE, content=render(schema)))
    return files


def openapi_schema() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        env.update(AGENTPLATFORM_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="agentplatform.settings")
        out = Path(data_dir) / "openapi.json"
        command = [sys.executable, "manage.py", "spectacular", "--format", "openapi-json", "--file", str(out)]
        subprocess.run([*command, "--validate", "--fail-on-warn"], cwd=ROOT, env=env, check=True)  # noqa: S603
        schema: dict[str, Any] = json.loads(out.read_text())
        return schema


def render(schema: dict[str, Any]) -> str:
    info = schema["info"]
    lines = [
        "# OpenAPI schema",
        "",
        f"{info['title']}, version {info['version']}. {info.get('description', '')}",
        "",
        "This page is generated from the schema the code serves: a running platform serves it at",
        "`/api/v1/schema/` and Swagger UI at `/api/v1/docs/`. The same schema as a file:",
        "[openapi.json](openapi.json). The conventions every endpoint shares (authentication,",
        "errors, pagination, runs, events) are in [the REST API](api.md).",
        "",
        *_security(schema),
    ]
    for tag, operations in _by_tag(schema).items():
        lines += [f"## {tag}", ""]
        for path, method, operation in operations:
            lines += _operation(path, method, operation)
    lines += ["## Schemas", ""]
    for name, component in schema["components"]["schemas"].items():
        lines += _component(name, component)
    return "\n".join(lines) + "\n"


def _security(schema: dict[str, Any]) -> list[str]:
    lines = ["## Authentication", "", "| scheme | how |", "|---|---|"]
    for name, scheme in schema["components"].get("securitySchemes", {}).items():
        how = scheme.get("description") or f"{scheme['type']} `{scheme.get('name', scheme.get('scheme', ''))}`"
        lines.append(f"| `{name}` | {_cell(how)} |")
    return [*lines, ""]


def _by_tag(schema: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    tags: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                tags.setdefault((operation.get("tags") or ["other"])[0], []).append((path, method, operation))
    return tags


def _operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}` {{#{operation['operationId']}}}", ""]
    for text in (operation.get("summary"), operation.get("description")):
        if text:
            lines += [text, ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | type | required | meaning |", "|---|---|---|---|---|"]
        for p in parameters:
            required = "yes" if p.get("required") else ""
            meaning = _cell(p.get("description", ""))
            lines.append(f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | {required} | {meaning} |")
        lines.append("")
    body = operation.get("requestBody")
    if body:
        lines += [f"**Request body** ({', '.join(f'`{c}`' for c in body['content'])}): {_content_type(body)}", ""]
    lines += ["| status | body |", "|---|---|"]
    for status, response in operation.get("responses", {}).items():
        lines.append(f"| {status} | {_content_type(response) or _cell(response.get('description', ''))} |")
    return [*lines, ""]


def _content_type(body: dict[str, Any]) -> str:
    """The body's schema, once for all its media types when they agree."""
    types = {_type(media.get("schema", {})) for media in body.get("content", {}).values()}
    return " or ".join(sorted(types))


def _component(name: str, component: dict[str, Any]) -> list[str]:
    lines = [f"### {name} {{#schema-{name.lower()}}}", ""]
    if component.get("description"):
        lines += [_cell(component["description"]), ""]
    if "enum" in component:
        return [*lines, "One of: " + ", ".join(f"`{value}`" for value in component["enum"] if value), ""]
    properties = component.get("properties", {})
    if not properties:
        return [*lines, f"Type: {_type(component)}", ""]
    required = set(component.get("required", []))
    lines += ["| field | type | required | meaning |", "|---|---|---|---|"]
    for field, spec in properties.items():
        flags = "read-only" if spec.get("readOnly") else ("yes" if field in required else "")
        lines.append(f"| `{field}` | {_type(spec)} | {flags} | {_cell(spec.get('description', ''))} |")
    return [*lines, ""]


def _type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        text = f"[{name}](#schema-{name.lower()})"
    elif "allOf" in spec or "oneOf" in spec or "anyOf" in spec:
        parts = spec.get("allOf") or spec.get("oneOf") or spec.get("anyOf") or []
        text = " or ".join(_type(part) for part in parts)
    elif spec.get("type") == "array":
        text = f"array of {_type(spec.get('items', {}))}"
    elif "enum" in spec:
        text = "one of " + ", ".join(f"`{value}`" for value in spec["enum"] if value is not None)
    elif isinstance(spec.get("additionalProperties"), dict):
        text = f"object of {_type(spec['additionalProperties'])}"
    else:
        text = spec.get("type", "any") + (f" ({spec['format']})" if "format" in spec else "")
    return text + (" or null" if spec.get("nullable") else "")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
