"""One error hierarchy for the whole service.

Each exception's docstring is its default message, so `raise ProfileError()` still says
something useful. This module imports nothing of ours: every layer may import it.
"""

from __future__ import annotations


class SamverkanError(Exception):
    """Something went wrong in samverkan."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class SettingsError(SamverkanError):
    """A setting is unknown or malformed."""


class ProfileError(SamverkanError):
    """A profile is invalid; nothing was changed."""


class NotFoundError(SamverkanError):
    """The thing asked for does not exist."""


class ConfidentialityError(SamverkanError):
    """The request would put confidential information about a child into a message."""


class DeliveryError(SamverkanError):
    """A message could not be delivered."""

    def __init__(
        self, message: str | None = None, *, smtp_code: int | None = None, reply: str | None = None
    ) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code
        self.reply = reply


class TransientDeliveryError(DeliveryError):
    """Delivery failed for a reason that may pass (4xx reply, connection fault): retry later."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed for good (5xx reply, invalid address): do not retry."""
