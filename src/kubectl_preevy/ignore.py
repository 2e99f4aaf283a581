"""What the copy leaves out: `.preevyignore` in the project directory (`.dockerignore` syntax) and the
`x-preevy` `sync.exclude` globs, both relative to the project directory.

The syntax is Docker's (moby's patternmatcher): `#` comments, `*` and `?` within a path segment, `**` across
segments, `[...]` classes, a leading `/` ignored, `!` re-including; the last matching pattern decides, and a
pattern that matches a directory matches everything under it.
"""

import dataclasses
import os
import pathlib
import re
from typing import Any

from kubectl_preevy import messages
from kubectl_preevy.errors import ExitCode, PreevyError

IGNORE_FILE = ".preevyignore"
X_PREEVY_SYNC = "sync"
X_PREEVY_EXCLUDE = "exclude"


@dataclasses.dataclass(frozen=True)
class Pattern:
    """One exclusion pattern, as a regex; negated: `!pattern` (includes again)."""

    regex: re.Pattern[str]
    negated: bool


@dataclasses.dataclass(frozen=True)
class Excluder:
    """The exclusion patterns of a project (x-preevy sync.exclude and .preevyignore)."""

    root: pathlib.Path  # the project directory: patterns are relative to it
    patterns: tuple[Pattern, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.patterns

    @property
    def has_negations(self) -> bool:
        return any(p.negated for p in self.patterns)

    def excluded(self, path: pathlib.Path) -> bool:
        """Whether the local path is left out (paths outside the project directory never are)."""
        if not self.patterns:
            return False
        try:
            relative = path.relative_to(self.root).as_posix()
        except ValueError:
            return False
        return excluded(relative, self.patterns)


def excluded(relative: str, patterns: tuple[Pattern, ...]) -> bool:
    if relative in ("", "."):
        return False
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]  # the path and its parents
    result = False
    for pattern in patterns:
        if any(pattern.regex.fullmatch(c) for c in candidates):
            result = not pattern.negated
    return result


def compile_patterns(lines: list[str]) -> tuple[Pattern, ...]:
    patterns = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:].strip()
        line = os.path.normpath(line).replace(os.sep, "/").lstrip("/")
        if line in ("", "."):
            continue
        patterns.append(Pattern(re.compile(_regex(line)), negated))
    return tuple(patterns)


def _regex(glob: str) -> str:
    out, i = "", 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**", i):
            i += 2
            if glob.startswith("/", i):  # `**/`: zero or more whole segments
                out += "(?:.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                out += re.escape(c)
            else:
                body = glob[i + 1 : end]
                body = "^" + body[1:] if body.startswith("!") else body
                out += f"[{body}]"
                i = end
        elif c == "\\" and i + 1 < len(glob):
            i += 1
            out += re.escape(glob[i])
        else:
            out += re.escape(c)
        i += 1
    return out


def load(working_dir: pathlib.Path, x_preevy: Any, compose_file: str) -> Excluder:
    """The project's exclusions: `.preevyignore` first, then `x-preevy.sync.exclude` (which thus may
    re-include with `!`). A malformed `sync.exclude` is one error line, before the cluster is asked."""
    lines: list[str] = []
    ignore_file = working_dir / IGNORE_FILE
    if ignore_file.is_file():
        lines += ignore_file.read_text(errors="replace").splitlines()
    sync = x_preevy.get(X_PREEVY_SYNC) if isinstance(x_preevy, dict) else None
    if sync is not None:
        exclude = sync.get(X_PREEVY_EXCLUDE) if isinstance(sync, dict) else None
        unknown = sorted(set(sync) - {X_PREEVY_EXCLUDE}) if isinstance(sync, dict) else ["(not a mapping)"]
        if unknown or not isinstance(exclude, list) or not all(isinstance(g, str) for g in exclude):
            raise PreevyError(messages.SYNC_EXCLUDE_INVALID.format(file=compose_file), ExitCode.USAGE)
        lines += exclude
    return Excluder(working_dir, compile_patterns(lines))
