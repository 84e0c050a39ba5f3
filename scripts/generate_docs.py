#!/usr/bin/env python3
"""Regenerates the reference parts of docs/ from the code: settings, CLI commands, endpoints.

Each generated part sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
markers; the prose around it is written by hand and left alone. tests/test_docs.py fails when
a setting, command or endpoint is missing from the docs: run this script, then commit.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from townsquare.cli import main as cli_main  # noqa: E402
from townsquare.config import Settings  # noqa: E402

DOCS = ROOT / "docs"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def configuration_table() -> str:
    lines = [
        "| Setting | Environment variable | Default | Description |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        lines.append(
            f"| `{name}` | `TOWNSQUARE_{name.upper()}` | {_cell(shown)} "
            f"| {_cell(field.description or '')} |"
        )
    return "\n".join(lines)


def command_paths(
    command: click.Command = cli_main, prefix: tuple[str, ...] = ("townsquare",)
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command, groups included, with the words that invoke it."""
    yield prefix, command
    if isinstance(command, click.Group):
        context = click.Context(command, info_name=" ".join(prefix))
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None:
                yield from command_paths(sub, (*prefix, name))


def cli_reference() -> str:
    sections = []
    for path, command in command_paths():
        context = click.Context(command, info_name=" ".join(path))
        usage = command.get_usage(context)
        options = []
        for parameter in command.get_params(context):
            if not isinstance(parameter, click.Option) or "--help" in parameter.opts:
                continue
            record = parameter.get_help_record(context)
            if record is not None:
                options.append(f"- `{record[0]}`: {record[1]}" if record[1] else f"- `{record[0]}`")
        body = [f"### {' '.join(path)}", "", "```text", usage, "```", ""]
        body.append(inspect_help(command))
        if options:
            body += ["", *options]
        sections.append("\n".join(body).rstrip())
    return "\n\n".join(sections)


def inspect_help(command: click.Command) -> str:
    return inspect.cleandoc(command.help or "").replace("\b\n", "")


def api_routes() -> list[tuple[str, str]]:
    """(methods, path) of every HTTP and WebSocket route of the application."""
    from townsquare.app import create_app

    app = create_app(Settings(data_dir=Path("/nonexistent")), migrate=False)
    found: list[tuple[str, str]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            original = getattr(route, "original_router", None)
            if original is not None:
                walk(original.routes, prefix + route.include_context.prefix)
                continue
            path = getattr(route, "path", None)
            if path is None:
                continue
            methods = getattr(route, "methods", None)
            verbs = sorted(set(methods) - {"HEAD"}) if methods else ["WS"]
            found.append((" ".join(verbs), prefix + path))

    walk(list(app.routes), "")
    return sorted(set(found), key=lambda item: (item[1], item[0]))


def api_table() -> str:
    lines = ["| Method | Path |", "| --- | --- |"]
    lines += [f"| {methods} | `{path}` |" for methods, path in api_routes()]
    return "\n".join(lines)


def replace_section(text: str, name: str, content: str) -> str:
    pattern = re.compile(
        rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.DOTALL
    )
    if not pattern.search(text):
        raise SystemExit(f"marker generated:{name} not found")
    return pattern.sub(lambda match: match.group(1) + content + "\n" + match.group(2), text)


GENERATED = {
    "CONFIGURATION.md": ("settings", configuration_table),
    "CLI.md": ("commands", cli_reference),
    "API.md": ("endpoints", api_table),
}


def main() -> None:
    for file_name, (section, build) in GENERATED.items():
        path = DOCS / file_name
        path.write_text(replace_section(path.read_text(), section, build()))
        print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
