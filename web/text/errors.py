"""The one error type of websem. Stdlib only: this module also runs inside Pyodide."""

from __future__ import annotations

__all__ = ["WebsemError"]


class WebsemError(Exception):
    """A user-facing error. The message starts with ``websem:``, names the bad value and says the fix."""

    def __init__(self, message: str) -> None:
        if not message.startswith("websem:"):
            message = "websem: " + message
        super().__init__(message)
