"""Files and folders only the hub's own user may read: the store, the axis spool, reports.

They hold personal data (names, ID numbers, attachments) and payment records, so they are
created owner-only, whatever the process's umask: folders 0700, files 0600. `private_dir`
tightens a folder that already exists only when asked (`tighten`): the store's and the spool's
folders are the hub's own, a reports folder an operator named may be shared on purpose.
This module must never delete anything or follow a symbolic link it creates.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, tighten: bool = False) -> Path:
    """`path` as a folder, created 0700 (its missing parents too); an existing one is set to
    0700 only with `tighten`."""
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for folder in missing:
        os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask
    if tighten and not missing:
        _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> None:
    """`path` exists and is 0600 (created empty, or an existing one tightened)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    _tighten(path, FILE_MODE)


def write_private(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path`, created or replaced as a 0600 file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), FILE_MODE)  # an existing file keeps its mode through open
        out.write(text)


def _tighten(path: Path, mode: int) -> None:
    current = path.stat().st_mode & 0o777
    if current & ~mode == 0:
        return
    try:
        os.chmod(path, mode)
    except PermissionError:  # not ours: say so, the hub still works
        log.warning("file_mode_too_open", path=str(path), mode=oct(current), wanted=oct(mode))
        return
    log.info("file_mode_tightened", path=str(path), was=oct(current), now=oct(mode))
