"""Exceptions with messages a shop owner can act on.

Each names the file (or thing) and what is wrong; the CLI and the app catch
``CallreviewError`` at the edge, record it and show it once.
"""


class CallreviewError(Exception):
    """Base class for errors we expect and explain to the user."""


class AudioError(CallreviewError):
    """A recording cannot be used: not audio, empty, corrupt or too long."""


class ModelError(CallreviewError):
    """Whisper weights are missing, corrupt or need a download we may not do."""


class ChecklistError(CallreviewError):
    """A script YAML file is invalid; the message names file, line and field."""


class InputError(CallreviewError):
    """A transcript JSON or chat log cannot be read."""
