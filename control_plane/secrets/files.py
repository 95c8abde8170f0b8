"""Files that hold secrets (the database, the secret key): readable by this user only.

Directories the control plane creates are 0700 and its files 0600. A directory that already
exists is left as it is (it may be shared, e.g. the working directory), with a warning when
other users can enter it; the files in it are still 0600.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Creates `path` and its missing parents 0700, or warns if it exists open to others."""
    if path.is_dir():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "directory %s is accessible to other users (mode %o); its secret files are "
                "0600, but consider `chmod 700 %s`",
                path,
                mode,
                path,
            )
        return
    # Not os.makedirs: it gives the mode to the last directory only, the parents get the umask's.
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)  # the umask can only remove bits
        except FileExistsError:
            pass


def tighten(path: Path) -> None:
    """Makes an existing file 0600 (one an older version created with the umask's mode)."""
    try:
        if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
            os.chmod(path, FILE_MODE)
    except FileNotFoundError:
        pass


def create_private(path: Path, data: bytes = b"") -> bool:
    """Creates `path` 0600 holding `data`, atomically, unless it exists; True if it created it.

    The content is written to a temporary file first and linked into place, so a process that
    loses a race to create it reads a complete file, never a partly written one.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)
