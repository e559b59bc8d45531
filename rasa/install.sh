#!/usr/bin/env bash
# `make rasa`: build .venv-rasa, Rasa Open Source 3.6.21 in its own Python 3.10 environment.
# Rasa 3.6 runs only on Python 3.8-3.10 and pins old libraries (pydantic 1, TensorFlow 2.12), so it
# never shares triagebot's .venv; the bot talks to it over HTTP (docs/rasa.md).
# The interpreter: $TRIAGE_RASA_PYTHON, else `pyenv prefix 3.10`, else python3.10 on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${RASA_VENV:-.venv-rasa}"
CONSTRAINTS=rasa/constraints.txt
RASA_SPEC='rasa[jieba]==3.6.21'

find_python() {
  if [ -n "${TRIAGE_RASA_PYTHON:-}" ]; then
    echo "$TRIAGE_RASA_PYTHON"
    return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    local prefix
    if prefix="$(pyenv prefix 3.10 2>/dev/null)" && [ -x "$prefix/bin/python3.10" ]; then
      echo "$prefix/bin/python3.10"
      return
    fi
  fi
  command -v python3.10 || true
}

PYTHON="$(find_python)"
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null; then
  echo "make rasa: needs a Python 3.10 interpreter (Rasa 3.6 supports 3.8-3.10 only)." >&2
  echo "  Found: ${PYTHON:-none}. Install one (e.g. 'pyenv install 3.10' or apt's python3.10)," >&2
  echo "  or point TRIAGE_RASA_PYTHON=/path/to/python3.10 at it." >&2
  exit 2
fi

echo "make rasa: $("$PYTHON" --version) at $PYTHON -> $VENV"
started=$SECONDS
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# uv resolves and installs TensorFlow's wheels several times faster than pip; pip is the fallback.
if "$VENV/bin/python" -m pip install --quiet -c "$CONSTRAINTS" uv 2>/dev/null; then
  "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" -c "$CONSTRAINTS" "$RASA_SPEC"
else
  "$VENV/bin/python" -m pip install --quiet -c "$CONSTRAINTS" "$RASA_SPEC"
fi
# Rasa asks about (and otherwise sends) telemetry on first use; never from this project.
RASA_TELEMETRY_ENABLED=false "$VENV/bin/rasa" telemetry disable >/dev/null 2>&1 || true
"$VENV/bin/python" -c "import rasa; print(\"installed rasa\", rasa.__version__)"
touch "$VENV/.installed-stamp"
echo "make rasa: done in $((SECONDS - started)) s; try: triage rasa export && triage rasa train"
