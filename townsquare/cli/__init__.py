"""The ``townsquare`` command: serve, migrate, administer and seed an instance."""

from __future__ import annotations

import importlib

import click

from townsquare import __version__
from townsquare.cli import moderation
from townsquare.cli.admin import admin
from townsquare.cli.seed import seed
from townsquare.cli.serve import migrate, serve


class CommandGroup(click.Group):
    """The top-level group; some commands are loaded only when they are asked for.

    Domains that ship their own commands build on ``townsquare.cli.options``, so importing them
    here eagerly would be circular.
    """

    lazy = {
        "shield": ("townsquare.shield.commands", "shield"),
        "cluster": ("townsquare.cli.cluster", "cluster"),
        "drill": ("townsquare.cli.drill", "drill"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attribute = self.lazy[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="townsquare")
def main() -> None:
    """Townsquare: a social platform that stays up.

    Settings are read from TOWNSQUARE_* environment variables (see docs/CONFIGURATION.md);
    command-line options override them.
    """


main.add_command(serve)
main.add_command(migrate)
main.add_command(admin)
for command in moderation.COMMANDS:
    admin.add_command(command)
main.add_command(seed)

__all__ = ["main"]
