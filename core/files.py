"""Read a file the profile names: a regular file only, and never more than a limit.

`stat` cannot be trusted for the size (`/proc/self/environ` reports 0 bytes and then yields
the process's environment; a FIFO or `/dev/zero` has no size at all), so the limit is applied
to what is read: at most `limit + 1` bytes, and one byte too many refuses the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.errors import FileTooLarge as FileTooLarge  # re-exported
from core.errors import UnreadableFile as UnreadableFile  # re-exported

# Opening a FIFO for reading would wait for a writer; O_NONBLOCK returns at once, and the
# S_ISREG check below then refuses it.
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def read_regular_file(path: Path, limit: int, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes."""
    flags = _FLAGS if follow_symlinks else _FLAGS | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UnreadableFile(f"cannot be opened: {exc.strerror}") from None
    # The check is on the open descriptor, so a file swapped after a check by name is still
    # seen for what it is.
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnreadableFile("is not a regular file")
    with os.fdopen(fd, "rb") as file:
        try:
            content = file.read(limit + 1)
        except OSError as exc:
            raise UnreadableFile(f"cannot be read: {exc.strerror}") from None
    if len(content) > limit:
        raise FileTooLarge(f"is larger than {limit} bytes")
    return content
