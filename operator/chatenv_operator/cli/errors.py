"""Exit codes of the `chatenv` CLI, and the error that carries one."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_TIMEOUT = 4
EXIT_NO_CLUSTER = 5
EXIT_FORBIDDEN = 6
EXIT_QUEUED = 7
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_ERROR: "the API server refused the request, or another error",
    EXIT_USAGE: "wrong arguments (checked before any request)",
    EXIT_NOT_FOUND: "no such DevSlot",
    EXIT_TIMEOUT: "not Ready within --timeout (ensure-ready without --soft-fail)",
    EXIT_NO_CLUSTER: "no cluster configuration, or the API server cannot be reached",
    EXIT_FORBIDDEN: "the credentials lack a permission",
    EXIT_QUEUED: "still queued at --timeout: every slot is taken, and the DevSlot keeps "
                 "its place (ensure-ready without --soft-fail)",
}


class CliError(Exception):
    """A failure to report on stderr, with the exit code that says what kind it is."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code
