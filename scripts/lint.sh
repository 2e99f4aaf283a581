#!/usr/bin/env bash
# The static checks CI and the pre-commit hooks run: ruff (lint, then format) and mypy (strict on src/,
# lenient on tests/; see pyproject.toml). Exits non-zero on the first failing check.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .
"$PYTHON" -m mypy
