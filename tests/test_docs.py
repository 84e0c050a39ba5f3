"""The docs cover the code: every setting, CLI command and endpoint has its place in docs/."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from townsquare.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REGENERATE = "run scripts/generate_docs.py and commit the docs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_docs", ROOT / "scripts/generate_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _generator()


def doc(name: str) -> str:
    return (DOCS / name).read_text()


@pytest.mark.parametrize("setting", sorted(Settings.model_fields))
def test_every_setting_is_documented(setting: str) -> None:
    rows = [line for line in doc("CONFIGURATION.md").splitlines() if line.startswith("| `")]
    documented = {row.split("`")[1] for row in rows}
    assert setting in documented, f"{setting} is missing from docs/CONFIGURATION.md: {REGENERATE}"


def test_documented_settings_exist() -> None:
    rows = [line for line in doc("CONFIGURATION.md").splitlines() if line.startswith("| `")]
    stale = {row.split("`")[1] for row in rows} - set(Settings.model_fields)
    assert not stale, f"docs/CONFIGURATION.md lists removed settings {stale}: {REGENERATE}"


def test_every_cli_command_is_documented() -> None:
    headings = set(re.findall(r"^### (townsquare.*)$", doc("CLI.md"), re.MULTILINE))
    commands = {" ".join(path) for path, _ in generator.command_paths()}
    assert commands - headings == set(), f"docs/CLI.md lacks commands: {REGENERATE}"
    assert headings - commands == set(), f"docs/CLI.md lists removed commands: {REGENERATE}"


def test_every_endpoint_is_documented() -> None:
    table = doc("API.md")
    missing = [
        f"{methods} {path}"
        for methods, path in generator.api_routes()
        if f"| {methods} | `{path}` |" not in table
    ]
    assert not missing, f"docs/API.md lacks {missing}: {REGENERATE}"


def test_readme_tour_uses_real_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    commands = {" ".join(path[1:]) for path, _ in generator.command_paths()}
    used = re.findall(r"townsquare ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)", readme)
    assert used, "the README shows the townsquare command"
    for words in used:
        assert words in commands or words.split()[0] in commands, f"README uses {words!r}"


def test_benchmarks_page_says_how_to_reproduce() -> None:
    page = doc("BENCHMARKS.md")
    assert "make bench" in page or "python -m bench" in page
    assert "baseline" in page.lower()
