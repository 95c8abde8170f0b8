#!/usr/bin/env bash
# Regenerates the checked-in client code from proto/: the Python code under clients/boomerang/v1
# (grpcio-tools) and the TypeScript code under clients/typescript/src/gen (protoc-gen-es, from
# npm, through buf). The only way generated code changes; CI runs it and fails if git sees a
# difference.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BUF=${BUF:-.venv/bin/buf}
out=clients
rm -f "$out"/boomerang/v1/*_pb2*.py "$out"/boomerang/v1/*_pb2*.pyi
"$PY" -m grpc_tools.protoc -I proto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  proto/boomerang/v1/*.proto
touch "$out"/boomerang/__init__.py "$out"/boomerang/v1/__init__.py

# The TypeScript plugin comes from clients/typescript/node_modules (`npm ci`, run by make install
# where Node.js is present). Without it the TypeScript code is left as it is, said loudly: CI
# installs Node.js, so drift cannot pass there.
if [ -x clients/typescript/node_modules/.bin/protoc-gen-es ]; then
  "$BUF" generate --template clients/typescript/buf.gen.yaml
else
  echo "gen_proto.sh: clients/typescript/node_modules is missing (Node.js/npm not installed?):" \
    "TypeScript code NOT regenerated; install Node.js 20+ and run 'make install'" >&2
  # CI must check both SDKs for drift: there, a missing Node.js is a failure.
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
