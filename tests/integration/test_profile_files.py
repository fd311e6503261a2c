"""Only the profile's own files: attachments stay in the profile's folder, are regular files
read with a hard limit (never trusting stat), and have plain names; the profile file itself is
a regular file read no further than its limit. Every refusal names file, line and field and
changes nothing in the database."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import models
from core.errors import ProfileError
from core.files import FileTooLarge, UnreadableFile, read_regular_file
from service import attachments
from service.attachments import name_problem
from service.yamlsource import MAX_BYTES
from tests.profiles import load, refusal, write_variant

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
SECRET = "SECRET-canary-4711"
# `attachments:` goes on the line after the first routine's kind (line 48 of minimal.yaml).
ATTACHMENT_LINE = 48


def with_attachment(folder: Path, name: str) -> Path:
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    quoted = quoted.replace("\r", "\\r").replace("\n", "\\n").replace("\u200b", "\\u200b")
    return write_variant(
        folder, "    kind: deadline\n", f'    kind: deadline\n    attachments: ["{quoted}"]\n'
    )


def outside(tmp_path: Path) -> Path:
    """A secret file next to (not inside) the profile's folder."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    return secret


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "profil"
    folder.mkdir(exist_ok=True)
    return folder


# Each builds, inside the profile folder (first argument), what the name (returned) points at.
Escape = Callable[[Path, Path], str]


def _dotdot(folder: Path, tmp: Path) -> str:
    outside(tmp)
    return "../secret.txt"


def _absolute(folder: Path, tmp: Path) -> str:
    return str(outside(tmp))


def _proc(folder: Path, tmp: Path) -> str:
    return "/proc/self/environ"


def _symlink_out(folder: Path, tmp: Path) -> str:
    (folder / "bilaga.txt").symlink_to(outside(tmp))
    return "bilaga.txt"


def _symlink_proc(folder: Path, tmp: Path) -> str:
    (folder / "miljo.txt").symlink_to("/proc/self/environ")
    return "miljo.txt"


def _folder_symlink_out(folder: Path, tmp: Path) -> str:
    outside(tmp)
    (folder / "material").symlink_to(tmp)
    return "material/secret.txt"


def _dev_zero(folder: Path, tmp: Path) -> str:
    (folder / "noll.bin").symlink_to("/dev/zero")
    return "noll.bin"


def _fifo(folder: Path, tmp: Path) -> str:
    os.mkfifo(folder / "ror.txt")
    return "ror.txt"


def _directory(folder: Path, tmp: Path) -> str:
    (folder / "mapp").mkdir()
    return "mapp"


def _loop(folder: Path, tmp: Path) -> str:
    (folder / "a.txt").symlink_to(folder / "b.txt")
    (folder / "b.txt").symlink_to(folder / "a.txt")
    return "a.txt"


def _cr_lf(folder: Path, tmp: Path) -> str:
    (folder / "a\r\nb.txt").write_text("x")
    return "a\r\nb.txt"


def _zero_width(folder: Path, tmp: Path) -> str:
    (folder / "a\u200bb.txt").write_text("x")
    return "a\u200bb.txt"


def _hidden(folder: Path, tmp: Path) -> str:
    (folder / ".env").write_text(SECRET)
    return ".env"


def _backslash(folder: Path, tmp: Path) -> str:
    return "..\\secret.txt"


def _symlink_to_unsafe_name(folder: Path, tmp: Path) -> str:
    (folder / "a\nb.txt").write_text("x")
    (folder / "fin.txt").symlink_to(folder / "a\nb.txt")
    return "fin.txt"


ESCAPES: dict[str, tuple[Escape, str]] = {
    "../ out of the folder": (_dotdot, "'..' parts"),
    "an absolute path": (_absolute, "not absolute"),
    "/proc/self/environ": (_proc, "not absolute"),
    "a symlink out of the folder": (_symlink_out, "leads outside the profile's folder"),
    "a symlink to /proc/self/environ": (_symlink_proc, "leads outside the profile's folder"),
    "a folder symlink out of the folder": (_folder_symlink_out, "leads outside"),
    "a symlink to /dev/zero": (_dev_zero, "leads outside"),
    "a FIFO": (_fifo, "is not a regular file"),
    "a directory": (_directory, "is not a regular file"),
    "a symlink loop": (_loop, "does not exist"),
    "CR/LF in the name": (_cr_lf, "no line breaks or other control characters"),
    "a zero-width space in the name": (_zero_width, "no line breaks or other control"),
    "a hidden file": (_hidden, "do not start with '.'"),
    "a backslash": (_backslash, "not \\"),
    "a symlink to a file with an unsafe name": (_symlink_to_unsafe_name, "unsafe name"),
}


@pytest.mark.parametrize("case", list(ESCAPES))
def test_an_attachment_that_is_not_a_plain_file_of_the_folder_is_refused(
    case: str, tmp_path: Path, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    build, expected = ESCAPES[case]
    folder = _folder(tmp_path)
    bad = with_attachment(folder, build(folder, tmp_path))
    message = refusal(session_factory, engine, bad, NOW)
    assert f"{bad}:{ATTACHMENT_LINE}: routines[0].attachments[0]: " in message, message
    assert expected in message, message
    assert SECRET not in message
    assert "\r" not in message and "\u200b" not in message


def test_the_size_limit_is_on_the_bytes_read_not_on_stat(
    tmp_path: Path, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attachments, "MAX_ATTACHMENT_BYTES", 10)
    folder = _folder(tmp_path)
    (folder / "lagom.txt").write_bytes(b"x" * 10)
    load(session_factory, with_attachment(folder, "lagom.txt"), NOW)
    (folder / "stor.txt").write_bytes(b"x" * 11)
    with pytest.raises(ProfileError, match=r"attachments\[0\]: attachment 'stor.txt' is larger"):
        load(session_factory, with_attachment(folder, "stor.txt"), NOW)
    # /proc files say they hold 0 bytes; what is read is what counts.
    assert os.stat("/proc/self/environ").st_size == 0
    with pytest.raises(FileTooLarge):
        read_regular_file(Path("/proc/self/environ"), 1)


def test_an_attachment_in_a_subfolder_loads_its_bytes(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    folder = _folder(tmp_path)
    (folder / "material").mkdir()
    (folder / "material" / "Föräldrastöd (2027).pdf").write_bytes(b"%PDF-1.4 ok")
    load(session_factory, with_attachment(folder, "material/Föräldrastöd (2027).pdf"), NOW)
    with session_factory() as session:
        (material,) = session.scalars(select(models.Material)).all()
        assert material.filename == "Föräldrastöd (2027).pdf"
        assert material.content == b"%PDF-1.4 ok"


NAME_ALPHABET = st.sampled_from(
    ["a", "Ö", "1", ".", "..", "/", "\\", " ", "-", "_", "\r", "\n", "\x00", "\u2028", "\u200b"]
)


@given(st.lists(NAME_ALPHABET, min_size=0, max_size=12).map("".join))
def test_an_accepted_name_stays_in_the_folder_and_is_plain(name: str) -> None:
    if name_problem(name) is not None:
        return
    path = PurePosixPath(name)
    assert not path.is_absolute()
    assert ".." not in path.parts and "." not in name.split("/")
    assert not any(c in name for c in "\\\r\n\x00\u2028\u200b")
    root = Path("/srv/profil")
    assert (root / name).resolve().is_relative_to(root)


# --------------------------------------------------------------------------- the profile file


@pytest.mark.parametrize(
    ("case", "make", "expected"),
    [
        ("/dev/zero", lambda tmp: Path("/dev/zero"), "is not a regular file"),
        ("a directory", lambda tmp: tmp, "is not a regular file"),
        ("a FIFO", lambda tmp: (os.mkfifo(tmp / "p.yaml"), tmp / "p.yaml")[1], "not a regular"),
        ("missing", lambda tmp: tmp / "saknas.yaml", "cannot be opened"),
    ],
)
def test_a_profile_that_is_not_a_regular_file_is_refused_without_reading_it(
    case: str, make: Callable[[Path], Path], expected: str, tmp_path: Path
) -> None:
    path = make(tmp_path)
    with pytest.raises(ProfileError, match=expected) as caught:
        load_only(path)
    assert str(path) in str(caught.value)


def test_a_profile_is_read_no_further_than_its_limit(tmp_path: Path) -> None:
    big = tmp_path / "stor.yaml"
    with big.open("wb") as file:
        file.truncate(MAX_BYTES * 50)  # sparse: cheap to make, costly to read whole
    with pytest.raises(ProfileError, match=f"larger than {MAX_BYTES} bytes"):
        load_only(big)
    with pytest.raises(FileTooLarge):
        read_regular_file(Path("/proc/self/environ"), 1)
    with pytest.raises(UnreadableFile, match="not a regular file"):
        read_regular_file(Path("/dev/zero"), 10)


def load_only(path: Path) -> None:
    from service.profiles import validate_profile

    validate_profile(path, NOW.date())
