"""What every admin command shares: the connection options (flags or environment), the
exit codes a script can rely on, and ``KEY=VALUE`` arguments."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click

from jackalope.cli.client import DEFAULT_URL, ApiFailed, AuthFailed, Client, ClientError, Unavailable, path
from jackalope.cli.output import Output

EXIT_OK = 0
EXIT_FAILED = 1  # the API refused or failed (its reason on stderr), or the command found nothing to do
EXIT_USAGE = 2  # bad flags or arguments (click's own code)
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: nothing answers at --url
EXIT_NOPERM = 77  # EX_NOPERM: wrong credentials, or the user lacks the tag or permission

EXIT_CODES_HELP = f"""\b
Exit codes:
  {EXIT_OK}   success
  {EXIT_FAILED}   the API answered with an error (its reason on stderr)
  {EXIT_USAGE}   usage error (bad option or argument)
  {EXIT_UNAVAILABLE}  cannot connect to the broker's HTTP API (EX_UNAVAILABLE)
  {EXIT_NOPERM}  authentication or authorisation failed (EX_NOPERM)
"""


class Failure(Exception):
    """A command that cannot do what was asked (exit 1, the message on stderr)."""


@dataclass
class Api:
    """A command's view of the broker: the HTTP client, the output, the vhost it works in."""

    client: Client
    out: Output
    vhost: str


F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = (
    click.option(
        "--url",
        envvar="JACKALOPE_URL",
        default=DEFAULT_URL,
        show_default=True,
        show_envvar=True,
        help="The broker's HTTP API.",
    ),
    click.option("--username", envvar="JACKALOPE_USER", default="guest", show_default=True, show_envvar=True),
    click.option(
        "--password", envvar="JACKALOPE_PASSWORD", default="guest", show_default=True, show_envvar=True
    ),
    click.option(
        "--vhost", "-V", envvar="JACKALOPE_VHOST", default="/", show_default=True, help="The virtual host."
    ),
    click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout, for scripts."),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        help="Seconds per request.",
    ),
)


def admin(func: F) -> F:
    """An admin command: the connection options, an :class:`Api` as the first argument, and
    failures turned into the documented exit codes."""

    @functools.wraps(func)
    def run(
        *, url: str, username: str, password: str, vhost: str, as_json: bool, timeout: float, **kwargs: Any
    ) -> Any:
        try:
            client = Client(url, username, password, timeout)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--url") from None
        try:
            return func(Api(client, Output(as_json), vhost), **kwargs)
        except AuthFailed as exc:
            _exit(EXIT_NOPERM, exc)
        except Unavailable as exc:
            _exit(EXIT_UNAVAILABLE, exc)
        except (ApiFailed, ClientError, Failure) as exc:
            _exit(EXIT_FAILED, exc)

    command: Any = run
    for option in reversed(_OPTIONS):
        command = option(command)
    return command  # type: ignore[no-any-return]


def _exit(code: int, exc: Exception) -> NoReturn:
    click.echo(f"jackalope: error: {exc}", err=True)
    raise click.exceptions.Exit(code)


def parse_value(raw: str) -> Any:
    """A JSON value if it reads as one (``10``, ``true``, ``{"a":1}``), else the text itself."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def pairs(values: Iterable[str], option: str, *, typed: bool = True) -> dict[str, Any]:
    """``KEY=VALUE`` arguments as a dict (values read by :func:`parse_value` when ``typed``)."""
    found: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        found[key] = parse_value(value) if typed else value
    return found


def json_object(raw: str | None, option: str) -> dict[str, Any]:
    """A JSON object given on the command line (``{}`` when absent)."""
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return value


all_vhosts_option = click.option(
    "--all-vhosts", "-a", is_flag=True, help="List in every virtual host, not only --vhost."
)


def scoped(api: Api, kind: str, all_vhosts: bool) -> str:
    """``/api/<kind>`` for every vhost, or ``/api/<kind>/<vhost>`` for the command's vhost."""
    return path(kind) if all_vhosts else path(kind, api.vhost)
