"""The one error type of kubectl-preevy and the exit codes it maps to."""

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # the operation failed (also: unknown environment)
    USAGE = 2  # bad flags or option values
    MISSING_TOOL = 3  # kubectl, docker or docker compose not installed
    CLUSTER = 4  # cluster unreachable, kubeconfig broken, namespace missing
    TIMEOUT = 5  # something did not become ready or go away in time
    REFUSED = 6  # the cluster said no: RBAC Forbidden, Pod Security, quota, no StorageClass, image pull
    INTERNAL = 70  # a bug: an unexpected exception (the log file named in the error has the traceback)
    INTERRUPTED = 130  # Ctrl-C


class PreevyError(Exception):
    """A failure reported as ONE `error: ...` line that says what to do, and an exit code."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.FAILURE):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
