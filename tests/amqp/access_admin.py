"""Creating users, vhosts, permissions and limits on the broker under test, and removing them.

Against Jackalope: its HTTP API (RabbitMQ's management API shape).  Against RabbitMQ
(``JACKALOPE_TEST_AMQP_URL``), whose management plugin may be off: ``rabbitmqctl``, run as
``JACKALOPE_TEST_RABBITMQCTL`` says, e.g.
``runuser -u rabbitmq -- rabbitmqctl -q -n bench@localhost``.  Everything made is removed
afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

RABBITMQCTL = os.environ.get("JACKALOPE_TEST_RABBITMQCTL") or None


class Admin:
    def __init__(self) -> None:
        self.users: list[str] = []
        self.vhosts: list[str] = []

    def add_user(self, name: str, password: str, tags: str = "") -> None:
        self.users.append(name)
        self._add_user(name, password, tags)

    def add_vhost(self, name: str) -> None:
        self.vhosts.append(name)
        self._add_vhost(name)

    def cleanup(self) -> None:
        for vhost in self.vhosts:
            self.delete_vhost(vhost, missing_ok=True)
        for user in self.users:
            self.delete_user(user, missing_ok=True)

    def _add_user(self, name: str, password: str, tags: str) -> None:
        raise NotImplementedError

    def _add_vhost(self, name: str) -> None:
        raise NotImplementedError

    def delete_user(self, name: str, missing_ok: bool = False) -> None:
        raise NotImplementedError

    def delete_vhost(self, name: str, missing_ok: bool = False) -> None:
        raise NotImplementedError

    def set_permissions(self, vhost: str, user: str, configure: str, write: str, read: str) -> None:
        raise NotImplementedError

    def set_vhost_limits(self, vhost: str, limits: dict[str, int]) -> None:
        raise NotImplementedError


class HttpAdmin(Admin):
    """Jackalope's HTTP API, as guest."""

    def __init__(self, http_url: str, auth: tuple[str, str] = ("guest", "guest")) -> None:
        super().__init__()
        self.url = http_url.rstrip("/") + "/api"
        self.auth = "Basic " + base64.b64encode(":".join(auth).encode()).decode()

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": self.auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.request(method, path, body)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    def _add_user(self, name: str, password: str, tags: str) -> None:
        self.ok("PUT", f"/users/{q(name)}", {"password": password, "tags": tags})

    def _add_vhost(self, name: str) -> None:
        self.ok("PUT", f"/vhosts/{q(name)}", {})

    def delete_user(self, name: str, missing_ok: bool = False) -> None:
        status, answer = self.request("DELETE", f"/users/{q(name)}")
        assert status == 204 or (missing_ok and status == 404), answer

    def delete_vhost(self, name: str, missing_ok: bool = False) -> None:
        status, answer = self.request("DELETE", f"/vhosts/{q(name)}")
        assert status == 204 or (missing_ok and status == 404), answer

    def set_permissions(self, vhost: str, user: str, configure: str, write: str, read: str) -> None:
        body = {"configure": configure, "write": write, "read": read}
        self.ok("PUT", f"/permissions/{q(vhost)}/{q(user)}", body)

    def set_vhost_limits(self, vhost: str, limits: dict[str, int]) -> None:
        for name, value in limits.items():
            self.ok("PUT", f"/vhost-limits/{q(vhost)}/{name}", {"value": value})


class CtlAdmin(Admin):
    """RabbitMQ's rabbitmqctl."""

    def __init__(self, command: str) -> None:
        super().__init__()
        self.command = shlex.split(command)

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.command, *args], check=check, capture_output=True, text=True, timeout=60)

    def _add_user(self, name: str, password: str, tags: str) -> None:
        self.ctl("add_user", name, password)
        if tags:
            self.ctl("set_user_tags", name, *tags.split(","))

    def _add_vhost(self, name: str) -> None:
        self.ctl("add_vhost", name)

    def delete_user(self, name: str, missing_ok: bool = False) -> None:
        self.ctl("delete_user", name, check=not missing_ok)

    def delete_vhost(self, name: str, missing_ok: bool = False) -> None:
        self.ctl("delete_vhost", name, check=not missing_ok)

    def set_permissions(self, vhost: str, user: str, configure: str, write: str, read: str) -> None:
        self.ctl("set_permissions", "-p", vhost, user, configure, write, read)

    def set_vhost_limits(self, vhost: str, limits: dict[str, int]) -> None:
        self.ctl("set_vhost_limits", "-p", vhost, json.dumps(limits))


def q(name: str) -> str:
    return urllib.parse.quote(name, safe="")
