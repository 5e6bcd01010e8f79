"""``jackalope definitions export [FILE]|import FILE``: the broker's definitions (RabbitMQ's
format: users, vhosts, permissions, policies, topology) through ``/api/definitions``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from jackalope.cli.client import path
from jackalope.cli.common import Api, Failure, admin
from jackalope.storage.files import atomic_write

SECRET = 0o600  # an export holds password hashes


@click.group()
def definitions() -> None:
    """Export or import the broker's definitions (a RabbitMQ definitions file imports as it is)."""


def _counts(document: dict[str, Any]) -> dict[str, int]:
    return {key: len(value) for key, value in document.items() if isinstance(value, list)}


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {key}" for key, n in counts.items() if n) or "nothing"


@definitions.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), required=False)
@admin
def export(api: Api, file: Path | None) -> None:
    """Write the definitions to FILE (readable by its owner only), or to stdout without FILE or with -."""
    document = api.client.get(path("definitions"))
    if file is None or str(file) == "-":
        api.out.json(document)
        return
    try:
        atomic_write(file, (json.dumps(document, indent=2) + "\n").encode(), mode=SECRET)
    except OSError as exc:
        raise Failure(f"cannot write {file}: {exc.strerror}") from None
    counts = _counts(document)
    api.out.done(f"exported {_summary(counts)} to {file}", {"file": str(file), "exported": counts})


@definitions.command("import")
@click.argument("file", type=click.File("rb"))
@admin
def import_(api: Api, file: Any) -> None:
    """Import the definitions in FILE (- for stdin); what exists and is not in FILE stays.
    Shows the upload's progress on a terminal."""
    raw = file.read()
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Failure(f"{file.name} is not a JSON definitions file: {exc}") from None
    if not isinstance(document, dict):
        raise Failure(f"{file.name} is not a definitions file: it must hold a JSON object")
    with api.out.progress(in_bytes=True) as progress:
        task = progress.add_task("importing", total=None)
        api.client.request(
            "POST",
            path("definitions"),
            document,
            progress=lambda sent, total: progress.update(task, completed=sent, total=total),
        )
    counts = _counts(document)
    api.out.done(f"imported {_summary(counts)} from {file.name}", {"file": file.name, "imported": counts})


commands = [definitions]
