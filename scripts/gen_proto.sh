#!/usr/bin/env bash
# Regenerates the checked-in Python code under clients/boomerang/v1 from proto/ with grpcio-tools.
# The only way generated code changes; CI runs it and fails if git sees a difference.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
out=clients
rm -f "$out"/boomerang/v1/*_pb2*.py "$out"/boomerang/v1/*_pb2*.pyi
"$PY" -m grpc_tools.protoc -I proto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  proto/boomerang/v1/*.proto
touch "$out"/boomerang/__init__.py "$out"/boomerang/v1/__init__.py
