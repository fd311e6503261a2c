"""A routine's attachment: only a file of the profile's own folder, read with a hard limit.

What a profile names is mailed to many people, so nothing outside the profile's folder may
be read: not `../x`, not an absolute path, not a symlink that leads out (the path is checked
after symlinks are resolved), not a device or `/proc` file (only regular files, and the size
is what was read, not what `stat` says). The file's name goes into every message's headers,
so it must be plain: letters, digits and a few punctuation marks, no control characters.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from core.errors import AttachmentProblem as AttachmentProblem  # re-exported
from core.files import FileTooLarge, UnreadableFile, read_regular_file

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_NAME_LENGTH = 100
_PUNCTUATION = frozenset(" ._-()+,")


def name_problem(name: str) -> str | None:
    """Why `name` (a path relative to the profile, `/` between folders) is refused, if it is."""
    if not name or len(name) > 4 * MAX_NAME_LENGTH:
        return f"an attachment path has 1 to {4 * MAX_NAME_LENGTH} characters"
    if "\\" in name:
        return "an attachment path separates folders with /, not \\"
    path = PurePosixPath(name)
    if path.is_absolute():
        return "an attachment path is relative to the profile's folder, not absolute"
    for part in name.split("/"):
        problem = _part_problem(part)
        if problem:
            return problem
    return None


def _part_problem(part: str) -> str | None:
    if part in ("", ".", ".."):
        return "an attachment path has no empty, '.' or '..' parts (it stays in the folder)"
    if len(part) > MAX_NAME_LENGTH:
        return f"an attachment's file and folder names have at most {MAX_NAME_LENGTH} characters"
    if part.startswith((".", " ")) or part.endswith(" "):
        return "an attachment's file and folder names do not start with '.' or a space"
    if not all(_plain(c) for c in part):
        return (
            "an attachment's file and folder names have only letters, digits, spaces and "
            "._-()+, (no line breaks or other control characters)"
        )
    return None


def _plain(char: str) -> bool:
    # Letters and digits of any script (å, ä, ö); no control, format or separator character
    # (CR, LF, zero-width space, U+2028) is alphanumeric.
    return char in _PUNCTUATION or char.isalnum()


def read_attachment(base: Path, name: str) -> tuple[str, bytes]:
    """(file name, bytes) of the attachment `name` in the profile folder `base`."""
    problem = name_problem(name)
    if problem:
        raise AttachmentProblem(problem)
    root = base.resolve()
    try:
        file = (root / name).resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        raise AttachmentProblem(f"attachment {name!r} does not exist (looked in {base})") from None
    if not file.is_relative_to(root):
        raise AttachmentProblem(
            f"attachment {name!r} leads outside the profile's folder (through a symlink)"
        )
    if name_problem(file.name):  # a symlink inside the folder to an oddly named file
        raise AttachmentProblem(f"attachment {name!r} leads to a file with an unsafe name")
    try:
        # The resolved path has no symlinks left; O_NOFOLLOW refuses one put there since.
        content = read_regular_file(file, MAX_ATTACHMENT_BYTES, follow_symlinks=False)
    except FileTooLarge:
        raise AttachmentProblem(f"attachment {name!r} is larger than 10 MiB") from None
    except UnreadableFile as exc:
        raise AttachmentProblem(f"attachment {name!r} {exc}") from None
    return file.name, content
