"""Meeting places: chosen by key, described from the profile's data.

A booking (routine or case meeting) stores the key of one of the profile's `places`; the
message context is built from that place's name, address and video link. A key the profile
no longer has (or any other stored text) gives no place at all ("meddelas senare"), so
nothing typed when booking can reach a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def place_fields(places: Mapping[str, Any], key: str | None) -> dict[str, Any]:
    """`place` (the key), `location` (name and address, one line) and `video` (a link)."""
    place = places.get(key) if key is not None else None
    if not isinstance(place, Mapping):
        return {"place": None, "location": None, "video": None}
    text = ", ".join(part for part in (place.get("name"), place.get("address")) if part)
    return {"place": key, "location": text, "video": place.get("video")}


def unknown_place(places: Mapping[str, Any], key: str | None) -> bool:
    """True when `key` is given but is none of the profile's places."""
    return key is not None and key not in places
