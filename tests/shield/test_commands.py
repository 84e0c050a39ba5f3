"""``townsquare shield ...`` sets the choice every worker reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from townsquare.config import Settings
from townsquare.shield.commands import shield
from townsquare.shield.mode import AttackMode


def test_on_off_auto_and_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The command exports its options for worker processes; keep that inside this test.
    monkeypatch.setenv("TOWNSQUARE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TOWNSQUARE_DATABASE_URL", "")
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path)]
    settings = Settings(data_dir=tmp_path.resolve(), secret_key="x")
    mode = AttackMode(settings)
    assert not mode.active

    result = runner.invoke(shield, ["on", *args])
    assert result.exit_code == 0, result.output
    mode.refresh()
    assert mode.active
    status = json.loads(runner.invoke(shield, ["status", "--json", *args]).output)
    assert status["choice"] == "on"

    runner.invoke(shield, ["off", *args])
    mode.refresh()
    assert not mode.active
    runner.invoke(shield, ["auto", *args])
    mode.refresh()
    assert mode.choice == "auto"
    assert "choice: auto" in runner.invoke(shield, ["status", *args]).output
