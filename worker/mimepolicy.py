"""The email package's SMTP policies, with the parsing and folding of header values shared.

A mailout writes the same headers into every message of a routine: From, Subject, Date (one
batch, one moment), MIME-Version, Auto-Submitted, each part's Content-Type and
Content-Transfer-Encoding. The email package parses each value into a header object when it
is set and folds it again when the message is written, about a fifth of a small message's
cost. Those header objects are immutable (`str` subclasses whose parse happens once, in
`__new__`), and folding one depends only on its text and the policy. So a value seen before
is given the object parsed then, and that object keeps the lines it was folded into. To and
Message-ID, different for each recipient, are not parsed here: worker.compose stores them as
written (worker.headers.set_recipient, `set_raw`). And the
header class for a name is made once (`_SharedRegistry`), where the email package makes a new
one for every header it parses.

The output is byte for byte what `email.policy.SMTP` and `SMTPUTF8` write
(tests/unit/test_mimepolicy.py).
"""

from __future__ import annotations

import threading
from email.headerregistry import HeaderRegistry
from email.policy import EmailPolicy
from typing import Any

__all__ = ["SMTP", "SMTPUTF8"]

_MAX_ENTRIES = 4096  # distinct (name, value) pairs kept per process; then started afresh


class _Memo:
    def __init__(self) -> None:
        self.items: dict[tuple[Any, ...], Any] = {}
        self.lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any:
        return self.items.get(key)

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        with self.lock:
            if len(self.items) >= _MAX_ENTRIES:
                self.items.clear()
            self.items[key] = value


_PARSED = _Memo()
_FOLDED = "_samverkan_folded"  # the attribute of a header object holding its folded lines


class SharedHeadersPolicy(EmailPolicy):
    """`EmailPolicy` that parses a header value, and folds a header, once per process."""

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if type(value) is not str:  # an object given (an Address, a header): nothing parsed
            return super().header_store_parse(name, value)
        key = (name, value)
        found = _PARSED.get(key)
        if found is None:
            found = super().header_store_parse(name, value)
            _PARSED.put(key, found)
        return found  # type: ignore[no-any-return]

    def fold_binary(self, name: str, value: Any) -> bytes:
        # A header object keeps its folded lines with it, one per kind of policy: the same
        # object (shared by header_store_parse above) is the same parse, so the same lines.
        # A raw value set with set_raw is folded as the email package does, each time.
        folded: dict[tuple[Any, ...], bytes] | None = getattr(value, _FOLDED, None)
        if folded is None:
            if not hasattr(value, "name"):
                return super().fold_binary(name, value)
            folded = {}
            setattr(value, _FOLDED, folded)
        key = (name, self.utf8, self.linesep, self.max_line_length, self.cte_type)
        found = folded.get(key)
        if found is None:
            found = folded[key] = super().fold_binary(name, value)
        return found


class _SharedRegistry(HeaderRegistry):
    """`HeaderRegistry` whose header class for a name is made once per process.

    The email package's registry makes a new class (`type(...)`) every time it is asked for
    one, so for every header parsed: 16 a mailout message, about a sixth of building and
    writing it in a cProfile. The class depends only on the name's registered kind, so the
    first one made is as good as any later one.
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def map_to_type(self, name: str, cls: type) -> None:
        super().map_to_type(name, cls)
        self._classes.clear()

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found


SMTP = SharedHeadersPolicy(linesep="\r\n", header_factory=_SharedRegistry())
SMTPUTF8 = SMTP.clone(utf8=True)
