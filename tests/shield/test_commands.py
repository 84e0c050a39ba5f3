"""``townsquare shield ...`` sets the choice every worker reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
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


async def test_status_shows_limits_and_what_each_worker_counted(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.shield.conftest import client_from
    from townsquare.app import create_app

    monkeypatch.setenv("TOWNSQUARE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TOWNSQUARE_DATABASE_URL", settings.database_url)
    app = create_app(settings.model_copy(update={"rate_limit_search": "7/minute"}), migrate=False)
    async with LifespanManager(app):
        for _ in range(3):
            await client_from(app).get("/api/v1/timelines/public")
        args = ["--data-dir", str(settings.data_dir)]
        status = json.loads(CliRunner().invoke(shield, ["status", "--json", *args]).output)
        output = CliRunner().invoke(shield, ["status", *args]).output
    assert status["limits"]["search"] == "120/5 minutes"  # as the CLI's settings say
    [worker] = status["workers"]
    assert worker["admitted"]["anonymous"] >= 1
    assert worker["concurrency_limit"] >= 1
    assert "limit login_account: 10/5 minutes" in output
    assert "admitted: trusted 0, pass 0, anonymous" in output
