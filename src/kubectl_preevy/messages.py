"""User-facing messages, kept together so wording stays consistent.

Every error message says what went wrong AND what to do, on one line.
"""

MISSING_TOOL = "{tool} was not found on PATH: install it (see the README's requirements) and retry"
COMMAND_TIMED_OUT = "`{command}` did not finish within {seconds:g}s: check the cluster and retry"
INTERRUPTED = "interrupted: run the same command again to continue, or `kubectl preevy down` to remove the environment"
