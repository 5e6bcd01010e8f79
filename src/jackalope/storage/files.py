"""Small files written whole: the one way metadata reaches the disk.

Every metadata file (a log's configuration and start offset, the broker's definitions, the
topics, the producer-id reservation...) is replaced atomically: the new content goes to a
temporary file beside it, which is renamed over the old one, so a reader (or a crash) sees
the old file or the new one, never a mix.  With ``durable`` (the default) the temporary file
is fsynced before the rename and the directory after it, so the new content also survives a
power cut once this returns.  Without, the write survives a crash of the process but a power
cut may bring back the old content (or, on file systems that do not order the data before the
rename, an empty file): for files whose loss costs only time, such as recovery hints.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

TMP_SUFFIX: Final = ".tmp"
"""Left behind only by a crash in the middle of a write; safe to delete at start."""


def atomic_write(path: Path, data: bytes, *, durable: bool = True, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (see the module docstring); the new file has ``mode``
    (less what the umask takes away; 0o600 for secrets, never readable by others meanwhile)."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    if mode != 0o644:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # a crash's leftover would keep its looser mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (created, renamed, removed files) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_int(path: Path, default: int) -> int:
    """The integer a metadata file holds, or ``default`` if it is missing or unreadable."""
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return default


def write_int(path: Path, value: int, *, durable: bool = True) -> None:
    atomic_write(path, f"{value}\n".encode(), durable=durable)
