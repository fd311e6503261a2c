"""Every error a user or an operator is told about is a `SamverkanError`, and every one of them
is defined in `core/errors.py`: one hierarchy, in one place (docs/architecture.md)."""

from __future__ import annotations

import importlib
import pkgutil

from core.errors import SamverkanError

PACKAGES = ("core", "models", "scheduler", "worker", "service", "web", "samverkan")


def _import_everything() -> None:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if ".migrations" not in module.name:
                importlib.import_module(module.name)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def test_every_samverkan_error_is_defined_in_core_errors() -> None:
    _import_everything()
    ours = {c for c in _subclasses(SamverkanError) if c.__module__.split(".")[0] in PACKAGES}
    elsewhere = sorted(
        f"{c.__module__}.{c.__qualname__}" for c in ours if c.__module__ != "core.errors"
    )
    assert elsewhere == []
    assert len(ours) > 20  # the import above reached the modules


def test_no_two_error_classes_share_a_name() -> None:
    _import_everything()
    names = [c.__name__ for c in _subclasses(SamverkanError) if c.__module__ == "core.errors"]
    assert len(names) == len(set(names))
