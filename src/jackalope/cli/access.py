"""``jackalope users|vhosts|permissions|policies list|add|delete``: who may do what, and the
policies of a vhost, over ``/api/users``, ``/api/vhosts``, ``/api/permissions`` and
``/api/policies`` (RabbitMQ's shapes; PUT creates or updates, as the API does)."""

from __future__ import annotations

import click

from jackalope.cli.client import path
from jackalope.cli.common import Api, admin, all_vhosts_option, json_object, scoped
from jackalope.cli.output import col, num

# -- users ------------------------------------------------------------------------------------


@click.group()
def users() -> None:
    """Users: list, add (or update), delete."""


@users.command("list")
@admin
def users_list(api: Api) -> None:
    """Every user and its tags."""
    found = api.client.get(path("users"))
    api.out.table(found, [col("NAME", "name"), col("TAGS", lambda u: ",".join(u.get("tags") or []))])


@users.command("add")
@click.argument("name")
@click.argument("new_password", metavar="[PASSWORD]", required=False)
@click.option("--password-hash", help="A RabbitMQ password hash instead of a password.")
@click.option("--tags", default="", help="Comma-separated tags, e.g. administrator or monitoring.")
@admin
def users_add(api: Api, name: str, new_password: str | None, password_hash: str | None, tags: str) -> None:
    """Add the user NAME (or change its password and tags).  Without PASSWORD or
    --password-hash the password is asked for (read from stdin when it is not a terminal)."""
    body: dict[str, str] = {"tags": tags}
    if password_hash is not None:
        if new_password is not None:
            raise click.UsageError("give PASSWORD or --password-hash, not both")
        body["password_hash"] = password_hash
    else:
        if new_password is None:
            new_password = click.prompt("Password", hide_input=True, confirmation_prompt=False, err=True)
        body["password"] = str(new_password)
    answer = api.client.put(path("users", name), body)
    done = "created" if answer.status == 201 else "updated"
    api.out.done(f"user {name} {done}", {"user": name, done: True})


@users.command("delete")
@click.argument("name")
@admin
def users_delete(api: Api, name: str) -> None:
    """Delete the user NAME."""
    api.client.delete(path("users", name))
    api.out.done(f"user {name} deleted", {"user": name, "deleted": True})


# -- vhosts -----------------------------------------------------------------------------------


@click.group()
def vhosts() -> None:
    """Virtual hosts: list, add (or update), delete."""


@vhosts.command("list")
@admin
def vhosts_list(api: Api) -> None:
    """The virtual hosts this user may see."""
    found = api.client.get(path("vhosts"))
    api.out.table(
        found,
        [
            col("NAME", "name"),
            col("DESCRIPTION", "description"),
            col("TAGS", lambda v: ",".join(v.get("tags") or [])),
            num("MESSAGES", "messages"),
        ],
    )


@vhosts.command("add")
@click.argument("name")
@click.option("--description", default=None)
@click.option("--tags", default=None, help="Comma-separated tags.")
@admin
def vhosts_add(api: Api, name: str, description: str | None, tags: str | None) -> None:
    """Add the virtual host NAME (or change its description and tags)."""
    body = {k: v for k, v in (("description", description), ("tags", tags)) if v is not None}
    answer = api.client.put(path("vhosts", name), body)
    done = "created" if answer.status == 201 else "updated"
    api.out.done(f"vhost {name} {done}", {"vhost": name, done: True})


@vhosts.command("delete")
@click.argument("name")
@admin
def vhosts_delete(api: Api, name: str) -> None:
    """Delete the virtual host NAME and everything in it."""
    api.client.delete(path("vhosts", name))
    api.out.done(f"vhost {name} deleted", {"vhost": name, "deleted": True})


# -- permissions ------------------------------------------------------------------------------


@click.group()
def permissions() -> None:
    """Users' permissions in a virtual host: list, add (or update), delete."""


@permissions.command("list")
@all_vhosts_option
@admin
def permissions_list(api: Api, all_vhosts: bool) -> None:
    """The permissions in --vhost (or in every vhost)."""
    found = api.client.get(path("permissions") if all_vhosts else path("vhosts", api.vhost, "permissions"))
    api.out.table(
        found,
        [
            col("USER", "user"),
            col("VHOST", "vhost"),
            col("CONFIGURE", "configure"),
            col("WRITE", "write"),
            col("READ", "read"),
        ],
    )


@permissions.command("add")
@click.argument("user")
@click.option("--configure", default=".*", show_default=True, help="Regex of resources it may configure.")
@click.option("--write", default=".*", show_default=True, help="Regex of resources it may write to.")
@click.option("--read", default=".*", show_default=True, help="Regex of resources it may read from.")
@admin
def permissions_add(api: Api, user: str, configure: str, write: str, read: str) -> None:
    """Give USER permissions in --vhost (replacing those it had)."""
    body = {"configure": configure, "write": write, "read": read}
    api.client.put(path("permissions", api.vhost, user), body)
    api.out.done(
        f"permissions of {user} in vhost {api.vhost} set", {"user": user, "vhost": api.vhost, **body}
    )


@permissions.command("delete")
@click.argument("user")
@admin
def permissions_delete(api: Api, user: str) -> None:
    """Take USER's permissions in --vhost away."""
    api.client.delete(path("permissions", api.vhost, user))
    api.out.done(
        f"permissions of {user} in vhost {api.vhost} deleted",
        {"user": user, "vhost": api.vhost, "deleted": True},
    )


# -- policies ---------------------------------------------------------------------------------

APPLY_TO = ("all", "queues", "exchanges", "classic_queues", "quorum_queues", "streams")


@click.group()
def policies() -> None:
    """Policies of a virtual host: list, add (or update), delete."""


@policies.command("list")
@all_vhosts_option
@admin
def policies_list(api: Api, all_vhosts: bool) -> None:
    """The policies in --vhost (or in every vhost)."""
    found = api.client.get(scoped(api, "policies", all_vhosts))
    api.out.table(
        found,
        [
            col("NAME", "name"),
            col("VHOST", "vhost"),
            col("PATTERN", "pattern"),
            col("APPLY-TO", "apply-to"),
            num("PRIORITY", "priority"),
            col("DEFINITION", "definition"),
        ],
    )


@policies.command("add")
@click.argument("name")
@click.argument("pattern")
@click.argument("definition")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--apply-to", type=click.Choice(APPLY_TO), default="all", show_default=True)
@admin
def policies_add(api: Api, name: str, pattern: str, definition: str, priority: int, apply_to: str) -> None:
    """Set the policy NAME in --vhost: PATTERN (a regex of names) and DEFINITION (a JSON
    object, e.g. '{"max-length": 10}')."""
    body = {
        "pattern": pattern,
        "definition": json_object(definition, "DEFINITION"),
        "priority": priority,
        "apply-to": apply_to,
    }
    answer = api.client.put(path("policies", api.vhost, name), body)
    done = "created" if answer.status == 201 else "updated"
    api.out.done(
        f"policy {name} in vhost {api.vhost} {done}", {"policy": name, "vhost": api.vhost, done: True}
    )


@policies.command("delete")
@click.argument("name")
@admin
def policies_delete(api: Api, name: str) -> None:
    """Delete the policy NAME in --vhost."""
    api.client.delete(path("policies", api.vhost, name))
    api.out.done(
        f"policy {name} in vhost {api.vhost} deleted", {"policy": name, "vhost": api.vhost, "deleted": True}
    )


commands = [users, vhosts, permissions, policies]
