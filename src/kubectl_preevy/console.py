"""Terminal output: progress, warnings and errors on stderr; results on stdout.

rich honours NO_COLOR, FORCE_COLOR and non-terminals. Import is lazy so `--help` stays fast; when stderr
is no terminal and nothing forces colour (CI, scripts), the lines are written plain and rich (~10 ms to
load) is not loaded at all: the same text rich would write there.
"""

import functools
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

API_VERSION = "kubectl-preevy/v1"  # of every JSON document we print (and of profile files)


@functools.cache
def stderr() -> "Console":
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


@functools.cache
def stdout() -> "Console":
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, emoji=False)


def info(message: str) -> None:
    if _plain():
        _write(message)
    else:
        stderr().print(message, markup=False)


def step(message: str) -> None:
    if _plain():
        _write(f"> {message}")
    else:
        stderr().print(f"[bold]>[/bold] {_escape(message)}")


def warn(message: str) -> None:
    if _plain():
        _write(f"warning: {message}")
    else:
        stderr().print(f"[yellow]warning:[/yellow] {_escape(message)}")


def error(message: str) -> None:
    if _plain():
        _write(f"error: {message}")
    else:
        stderr().print(f"[red]error:[/red] {_escape(message)}")


def _plain() -> bool:
    """Whether rich would write to stderr as to no terminal (its `Console.is_terminal`): no colour, no
    styles, so the plain line is the same and rich need not be loaded."""
    environ = os.environ
    if environ.get("TTY_COMPATIBLE") in ("0", "1"):
        return environ["TTY_COMPATIBLE"] == "0"
    if environ.get("FORCE_COLOR") is not None:
        return environ["FORCE_COLOR"] == ""
    try:
        return not sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one
        return True


def _write(line: str) -> None:
    sys.stderr.write(line.expandtabs(8) + "\n")  # rich expands tabs, to 8 columns
    sys.stderr.flush()


def result(text: str) -> None:
    """A result for scripts: plain text on stdout, never styled."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def to_json(document: dict[str, Any]) -> str:
    """A result document (`-o json`): versioned, consumers check apiVersion and kind."""
    return json.dumps(document, indent=2)


def to_yaml(document: dict[str, Any]) -> str:
    """A result document as YAML (`-o yaml`), keys in the order of the JSON one."""
    import yaml

    text: str = yaml.safe_dump(
        document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 20
    )  # one line per value, however long (kubectl does not fold either)
    return text


_documents_printed = 0


def document(document: dict[str, Any], output: str) -> None:
    """A result document on stdout, as `-o json` or `-o yaml` asked. A second document of the same run
    (the Error after connect's Environment) starts with `---` in YAML; JSON documents simply follow."""
    global _documents_printed
    if output == "yaml":
        result(("---\n" if _documents_printed else "") + to_yaml(document))
    else:
        result(to_json(document))
    _documents_printed += 1


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain, aligned text table (kubectl style: upper-case header, two spaces between columns)."""
    cells = [[h.upper() for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells
    )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
