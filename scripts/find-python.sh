#!/usr/bin/env bash
# Print the path of a CPython 3.13 interpreter (its bin dir also holds `python3.13`, which `sam build` needs):
# pyenv's 3.13.x where pyenv has one, else one uv finds, else one uv installs (where uv may download Pythons).
set -euo pipefail
version="${1:-3.13}"

pyenv_root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
candidate="$(ls -1 "$pyenv_root"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -V | tail -n 1 || true)"
if [[ -n "$candidate" && -x "$candidate" ]]; then
  echo "$candidate"
  exit 0
fi

command -v uv >/dev/null || { echo "find-python.sh: uv is not installed" >&2; exit 1; }
# Outside the project and any virtualenv, so uv answers with a real interpreter, not .venv's.
find_with_uv() { (cd / && env -u VIRTUAL_ENV uv python find --system "$version" 2>/dev/null); }
if ! found="$(find_with_uv)"; then
  echo "find-python.sh: no Python $version found; installing one with uv" >&2
  uv python install "$version" >&2
  found="$(find_with_uv)"
fi
if [[ ! -x "$(dirname "$found")/python$version" ]]; then
  echo "find-python.sh: $found has no python$version beside it (sam build needs one on PATH)" >&2
  exit 1
fi
echo "$found"
