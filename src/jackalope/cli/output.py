"""What the admin commands print: rich tables that fit the terminal, or JSON for scripts
(``--json``: one JSON document on stdout, nothing else there).  Notes and progress go to
stderr, so stdout stays the command's answer."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """A table column: its header and how to take the cell from an API object (a dotted key
    path into nested objects, or a function)."""

    header: str
    key: str | Callable[[Row], Any]
    justify: str = "left"

    def cell(self, row: Row) -> str:
        value = self.key(row) if callable(self.key) else dig(row, self.key)
        return text(value)


def col(header: str, key: str | Callable[[Row], Any]) -> Column:
    return Column(header, key)


def num(header: str, key: str | Callable[[Row], Any]) -> Column:
    return Column(header, key, "right")


def dig(row: Any, dotted: str) -> Any:
    """``row["a"]["b"]`` for ``"a.b"``; None where a step is missing."""
    for part in dotted.split("."):
        if not isinstance(row, dict):
            return None
        row = row.get(part)
    return row


def rate(row: Row, stat: str) -> float | None:
    """A ``message_stats`` rate (``<stat>_details.rate``), None if the object has none."""
    value = dig(row, f"message_stats.{stat}_details.rate")
    return float(value) if isinstance(value, int | float) else None


def text(value: Any) -> str:
    """A cell: ``-`` for nothing (as kafka-consumer-groups prints), compact JSON for objects."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":")) if value else "-"
    return str(value)


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(soft_wrap=False, highlight=False)
        self.errors = Console(stderr=True, highlight=False)

    def json(self, document: Any) -> None:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def table(
        self, rows: Sequence[Row], columns: Sequence[Column], *, title: str | None = None, raw: Any = None
    ) -> None:
        """The rows as a table (columns shrink and wrap to the terminal's width); with
        ``--json`` the API's objects as they are (``raw`` if given)."""
        if self.as_json:
            self.json(list(rows) if raw is None else raw)
            return
        table = Table(title=title, box=None, header_style="bold", pad_edge=False, show_edge=False)
        for c in columns:
            # headers stay whole; numbers never break; long text folds within its column
            table.add_column(
                c.header,
                justify=c.justify,  # type: ignore[arg-type]
                overflow="fold",
                min_width=len(c.header),
                no_wrap=c.justify == "right",
            )
        for row in rows:
            table.add_row(*(c.cell(row) for c in columns))
        self.console.print(table)

    def fields(self, pairs: Iterable[tuple[str, Any]], *, title: str | None = None) -> None:
        """A two-column name/value table (table mode only)."""
        table = Table(title=title, box=None, show_header=False, pad_edge=False, show_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for name, value in pairs:
            table.add_row(name, text(value))
        self.console.print(table)

    def done(self, message: str, document: Any) -> None:
        """The outcome of a change: a line for people, ``document`` for ``--json``."""
        if self.as_json:
            self.json(document)
        else:
            self.console.print(message, markup=False)

    def line(self, message: str) -> None:
        """A line of the answer on stdout, flushed (a consumer's messages as they come)."""
        sys.stdout.write(message + "\n")
        sys.stdout.flush()

    def note(self, message: str) -> None:
        self.errors.print(message, markup=False)

    def progress(self, *, in_bytes: bool = False) -> Progress:
        """A progress bar on stderr, drawn only on a terminal (so never in a script's
        output): items done of the total, or bytes.  What the command prints meanwhile goes
        above the bar when stdout is that terminal too, and straight to stdout otherwise."""
        amount = DownloadColumn() if in_bytes else MofNCompleteColumn()
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            amount,
            TimeElapsedColumn(),
            console=self.errors,
            transient=True,
            disable=not self.errors.is_terminal,
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=False,
        )
