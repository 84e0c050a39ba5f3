"""``townsquare shield on|off|auto|status``: the administrator's hand on under-attack mode."""

from __future__ import annotations

import json
from pathlib import Path

import click

from townsquare.cli.options import settings_from, storage_options
from townsquare.shield.mode import set_forced_mode, shield_status


@click.group()
def shield() -> None:
    """Force under-attack mode on or off, or let the workers decide (auto)."""


def _switch(choice: str, help_text: str) -> click.Command:
    @storage_options
    def command(data_dir: Path | None, database_url: str | None) -> None:
        settings = settings_from(data_dir, database_url)
        set_forced_mode(settings, choice)
        click.echo(f"Under-attack mode: {choice} (workers apply it within a second).")

    return click.Command(
        choice, callback=command, params=getattr(command, "__click_params__", []), help=help_text
    )


shield.add_command(_switch("on", "Require proof-of-work passes from anonymous clients now."))
shield.add_command(_switch("off", "Never require passes, whatever the traffic."))
shield.add_command(_switch("auto", "Let each worker switch the mode by itself (the default)."))


@shield.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@storage_options
def status(as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Show the administrator's choice and what each running worker reports."""
    report = shield_status(settings_from(data_dir, database_url))
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"choice: {report['choice']}")
    click.echo(f"under attack: {'yes' if report['active'] else 'no'}")
    for name, value in report["limits"].items():
        click.echo(f"limit {name}: {value}")
    for worker in report["workers"]:
        state = "on" if worker["active"] else "off"
        line = f"worker {worker['pid']}: under attack {state}, intensity {worker['intensity']}"
        if "concurrency_limit" in worker:
            line += (
                f", concurrency {worker['in_flight']}/{worker['concurrency_limit']}"
                f", difficulty {worker['difficulty']}"
            )
        click.echo(line)
        for counter in ("admitted", "shed", "waiting"):
            if counter in worker:
                values = ", ".join(f"{k} {v}" for k, v in worker[counter].items())
                click.echo(f"  {counter}: {values}")
        if "challenged" in worker:
            limited = sum(worker["rate_limited"].values())
            click.echo(
                f"  challenged {worker['challenged']}, passes issued {worker['passes_issued']}, "
                f"rate limited {limited}, streaming refused {worker['streaming_refused']}, "
                f"cache hits {worker['cache_hits']}"
            )
