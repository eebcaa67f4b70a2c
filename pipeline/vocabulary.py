"""The status words callreview stores and writes to JSON, one StrEnum each, so
the writer and every reader agree by construction. A StrEnum member equals its
string, so rows and JSON written before these types read back unchanged."""

from __future__ import annotations

from enum import StrEnum


class RecordingStatus(StrEnum):
    """Where a recording is in the pipeline (``recordings.status``)."""

    NEW = "new"
    PROCESSING = "processing"
    TRANSCRIBED = "transcribed"
    ALIGNED = "aligned"
    FAILED = "failed"


class FileResult(StrEnum):
    """What a batch did with one input file (``ProcessResult.status``)."""

    DONE = "done"
    REGISTERED = "registered"  # stored for a watching worker (uploads), not yet processed
    SKIPPED = "skipped"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    BUSY = "busy"


class StepStatus(StrEnum):
    """The aligner's verdict on a script step in one call."""

    FOUND = "found"
    MISSING = "missing"


class Mark(StrEnum):
    """A listener's mark on a step (``step_marks.mark``)."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NOT_IN_SCRIPT = "not_in_script"


class Category(StrEnum):
    """A reviewed step as the reports count it: a mark, or missing from the call."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NOT_IN_SCRIPT = "not_in_script"
    MISSING = "missing"


class ReviewStatus(StrEnum):
    """``reviews.status``: a draft autosaves; a submitted review is final."""

    DRAFT = "draft"
    SUBMITTED = "submitted"


class AssignmentStatus(StrEnum):
    """A call in a listener's queue, as the queue shows it."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"


class Role(StrEnum):
    """``users.role``."""

    OWNER = "owner"
    LISTENER = "listener"


class SaleOutcome(StrEnum):
    """``outcomes.outcome``: what the call led to, imported from the shop's CRM."""

    ORDER = "order"
    NO_ORDER = "no_order"
    CANCELLED = "cancelled"
    OTHER = "other"


class AuditAction(StrEnum):
    """What an audit-log entry records (``audit_events.action``)."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"  # wrong password or unknown name
    LOGIN_REFUSED = "login_refused"  # not even checked: the account or the address is locked
    LOGOUT = "logout"
    OPEN = "open"
    MARK = "mark"
    SUBMIT = "submit"
