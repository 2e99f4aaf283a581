"""What `up` leaves for the CI job: GitHub Actions' step summary and step outputs, GitLab's dotenv.

- `$GITHUB_STEP_SUMMARY`: the URL table, appended (Markdown).
- `$GITHUB_OUTPUT`: `urls` (JSON: [{service, port, url}]) and `env-id`, for later steps and jobs.
- GitLab (`$GITLAB_CI`), or wherever `$PREEVY_DOTENV` says: a dotenv file (default `preevy.env`)
  with PREEVY_ENV_ID, PREEVY_URL (the first URL) and PREEVY_URL_<SERVICE>_<PORT>, for
  `artifacts: reports: dotenv` and `environment: url: $PREEVY_URL`.
"""

import json
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from kubectl_preevy import console, messages
from kubectl_preevy.errors import ExitCode, PreevyError

DEFAULT_DOTENV = "preevy.env"


def write(environ: Mapping[str, str], env_id: str, rows: list[dict[str, Any]], cwd: pathlib.Path) -> None:
    if environ.get("GITHUB_STEP_SUMMARY"):
        _append(environ["GITHUB_STEP_SUMMARY"], summary(env_id, rows))
    if environ.get("GITHUB_OUTPUT"):
        urls = json.dumps(rows, separators=(",", ":"))
        _append(environ["GITHUB_OUTPUT"], f"env-id={env_id}\nurls={urls}\n")
    if environ.get("PREEVY_DOTENV") or environ.get("GITLAB_CI"):
        path = cwd / environ.get("PREEVY_DOTENV", DEFAULT_DOTENV)
        _write(path, dotenv(env_id, rows))
        console.info(messages.CI_DOTENV_WRITTEN.format(path=path))


def summary(env_id: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"### Preview environment `{env_id}`", "", "| Service | Port | URL |", "|---|---|---|"]
    lines += [f"| {r['service']} | {r['port']} | {r['url']} |" for r in rows]
    return "\n".join(lines) + "\n\n"


def dotenv(env_id: str, rows: list[dict[str, Any]]) -> str:
    values = {"PREEVY_ENV_ID": env_id}
    if rows:
        values["PREEVY_URL"] = rows[0]["url"]
    for row in rows:
        name = re.sub(r"[^A-Z0-9]", "_", f"{row['service']}_{row['port']}".upper())
        values[f"PREEVY_URL_{name}"] = row["url"]
    return "".join(f"{key}={value}\n" for key, value in values.items())


def _append(path: str, text: str) -> None:
    try:
        with open(path, "a", encoding="utf-8") as file:
            file.write(text)
    except OSError as err:
        raise PreevyError(
            messages.CI_OUTPUT_UNWRITABLE.format(path=path, error=err), ExitCode.FAILURE
        ) from None


def _write(path: pathlib.Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise PreevyError(
            messages.CI_OUTPUT_UNWRITABLE.format(path=path, error=err), ExitCode.FAILURE
        ) from None
