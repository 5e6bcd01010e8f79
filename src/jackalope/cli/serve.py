"""``jackalope serve``: run the broker in this process until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from pathlib import Path
from typing import Any

import click

from jackalope import __version__, eventloop, log_setup, settings


def _settings_options(func: Any) -> Any:
    """One ``--flag`` per field of :class:`~jackalope.settings.Settings`, help text included."""
    for name, f in reversed(settings.FIELDS.items()):
        kind = settings.field_type(name)
        env = settings.ENV_PREFIX + name.upper()
        default = f.default
        func = click.option(
            "--" + name.replace("_", "-"),
            name,
            type=click.Path(path_type=Path) if kind is Path else kind,
            default=None,
            help=f"{f.metadata['help']}  [default: {default}; env: {env}]",
        )(func)
    return func


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML file of settings (keys as the flags, without dashes).  [env: JACKALOPE_CONFIG]",
)
@_settings_options
def serve(config_file: Path | None, **flags: Any) -> None:
    """Run the broker until SIGINT or SIGTERM.

    Settings come from these flags, then JACKALOPE_* environment variables, then the --config
    file, then the defaults.
    """
    try:
        s = settings.load(flags, config_file=config_file)
    except settings.SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    log_setup.configure(s.log_level, s.log_format)
    from jackalope.datadir import StartupError  # the broker loads only for serve, not for admin commands

    try:
        with asyncio.Runner(loop_factory=eventloop.new_event_loop) as runner:
            runner.run(_serve(s))
    except StartupError as exc:
        click.echo(f"jackalope: error: {exc}", err=True)
        sys.exit(1)


GC_THRESHOLD = (50_000, 20, 100)


def _tune_gc() -> None:
    """The broker's own process: what start-up made (modules, settings, recovered state) is
    kept out of every collection, and the youngest generation is collected every 50,000
    allocations rather than 700.  Messages are freed by reference counting; the collector only
    finds cycles, and running it as often as Python's default makes it walk a deep prefetch of
    unacknowledged deliveries many times a second.  (The embedded broker leaves the host
    process's collector alone.)"""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


async def _serve(s: settings.Settings) -> None:
    from jackalope.server import Server

    server = Server(s)
    await server.start()
    _tune_gc()
    click.echo(f"Jackalope {__version__} ({eventloop.name()}) serving data in {s.data_dir}")
    for name, url in server.addresses.items():
        click.echo(f"  listening {name:<5} {url}")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    click.echo("Jackalope stopping")
    await server.stop()
