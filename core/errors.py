"""One error hierarchy for the whole service.

Each exception's docstring is its default message, so `raise ProfileError()` still says
something useful. This module imports nothing of ours: every layer may import it.
"""

from __future__ import annotations


class SamverkanError(Exception):
    """Something went wrong in samverkan."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


# --- input: settings, profiles, files, requests -----------------------------------------------


class SettingsError(SamverkanError):
    """A setting is unknown or malformed."""


class ProfileError(SamverkanError):
    """A profile is invalid; nothing was changed."""


class NotFoundError(SamverkanError):
    """The thing asked for does not exist."""


class ConfidentialityError(SamverkanError):
    """The request would put confidential information about a child into a message."""


class UnreadableFile(SamverkanError):
    """The file cannot be used; the message says why, without the file's content."""


class FileTooLarge(UnreadableFile):
    """The file holds more than the limit."""


class AttachmentProblem(SamverkanError):
    """An attachment cannot be used; the message is safe to show (it never holds the name
    when the name itself is the problem)."""


class BookingError(SamverkanError):
    """The meeting cannot be booked like that."""


class NonexistentLocalTime(SamverkanError, ValueError):
    """A wall-clock time that the time zone skips (clocks go forward)."""


class CaseInputError(SamverkanError):
    """The request names something that does not exist or is malformed; nothing was changed."""


class CaseRuleError(SamverkanError):
    """The case process does not allow that now; nothing was changed."""


class PermissionRefused(CaseRuleError):
    """The person acting may not do that (service/permissions.py); nothing was changed."""


# --- building a message ---------------------------------------------------------------------


class TemplateError(SamverkanError):
    """A message template is missing or does not render."""


class InviteError(SamverkanError, ValueError):
    """An invitation cannot be built from the values given."""

    def __init__(self, problem: str) -> None:
        # The outbox records this text as the row's reason: say what failed, then why.
        super().__init__(f"the invitation could not be built: {problem}")


class NonexistentLocalTimeError(InviteError):
    """A local time falls in the gap when clocks go forward: it never happens."""


class HeaderInjectionError(SamverkanError, ValueError):
    """A header value holds a control character or would break the structure of the header."""

    def __init__(
        self, field: str, problem: str = "must not contain CR, LF or other control characters"
    ) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


# --- running: the broker, simulation, delivery ----------------------------------------------


class LongEtaError(SamverkanError, ValueError):
    """A task was about to be published with an ETA or countdown longer than MAX_ETA."""


class SimulationStalled(SamverkanError):
    """Messages handed to the workers were not finished in time: is a worker running?"""


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


class OAuthError(SamverkanError):
    """The token endpoint refused or could not be reached."""


class ImapError(SamverkanError):
    """The reply mailbox could not be reached, logged in to or changed."""


class MeetingError(SamverkanError):
    """The meeting cannot be called off like that."""


class FieldError(SamverkanError):
    """A field of the request's body names nothing (422, naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class AccountError(SamverkanError):
    """The account cannot be made or changed as asked; nothing was changed."""


class MeetingNotFound(NotFoundError):
    """No booked meeting of that routine on that day."""
