"""A municipality's own wording of a message: an override of one template file.

`template` is the file's name under `templates/`, e.g. `email/arende-kallelse.txt`; the
renderer (`worker.render`) uses the body instead of the file for that municipality only.
Validated before it is stored (`service.texts`); removing the row reverts to the default.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class MessageText(Base):
    __tablename__ = "message_text"
    __table_args__ = (UniqueConstraint("municipality_id", "template"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    template: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
