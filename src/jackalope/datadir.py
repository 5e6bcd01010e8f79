"""The data directory and its lock: one broker process per directory."""

from __future__ import annotations

import base64
import errno
import fcntl
import os
import uuid
from pathlib import Path
from typing import Final

from jackalope.storage.files import atomic_write

LOCK_FILE: Final = ".lock"
CLUSTER_ID_FILE: Final = "cluster-id"


class StartupError(Exception):
    """The broker cannot start; the message is one line meant for the operator."""


class DataDir:
    """An exclusively locked data directory (``flock`` on ``.lock``; released if the process dies)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def acquire(self) -> None:
        path = self.path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot create data directory {path}: {exc.strerror}") from None
        if not path.is_dir():
            raise StartupError(f"data directory {path} is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise StartupError(f"data directory {path} is not writable")
        lock = path / LOCK_FILE
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StartupError(f"data directory {path} is not writable: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StartupError(
                    f"data directory {path} is locked by another Jackalope process (pid {holder})"
                ) from None
            raise StartupError(f"cannot lock data directory {path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def cluster_id(self) -> str:
        """This data directory's cluster id (Kafka's 22-character base64 UUID), made on first use."""
        path = self.path / CLUSTER_ID_FILE
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        atomic_write(path, (value + "\n").encode())
        return value

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
