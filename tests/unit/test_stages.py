"""A school unit's stages (seed 004: IFO comes to one parent meeting in each stage)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scheduler.spec import STAGES_OF_KIND, Stage, Unit, UnitKind


def unit(kind: str, stages: list[str] | None = None) -> Unit:
    fields: dict[str, object] = {"key": "u", "name": "Skolan", "kind": kind}
    if stages is not None:
        fields["stages"] = stages
    return Unit.model_validate(fields)


@pytest.mark.parametrize("kind", list(UnitKind))
def test_without_stages_a_unit_has_all_of_its_kind(kind: UnitKind) -> None:
    assert unit(kind.value).school_stages() == [s.value for s in STAGES_OF_KIND.get(kind, ())]


def test_a_7_9_school_has_only_hogstadiet() -> None:
    assert unit("grundskola", ["hogstadiet"]).school_stages() == ["hogstadiet"]


def test_stages_come_in_school_order() -> None:
    given = unit("grundskola", ["hogstadiet", "forskoleklass", "mellanstadiet"])
    assert given.school_stages() == ["forskoleklass", "mellanstadiet", "hogstadiet"]


@pytest.mark.parametrize("kind", list(UnitKind))
@pytest.mark.parametrize("stage", list(Stage))
def test_a_stage_its_kind_cannot_have_is_refused(kind: UnitKind, stage: Stage) -> None:
    if stage in STAGES_OF_KIND.get(kind, ()):
        assert unit(kind.value, [stage.value]).school_stages() == [stage.value]
        return
    with pytest.raises(ValidationError, match=f"stages of a {kind.value} unit are among"):
        unit(kind.value, [stage.value])


def test_an_empty_list_of_stages_is_refused() -> None:
    with pytest.raises(ValidationError, match="stages of a grundskola unit"):
        unit("grundskola", [])
