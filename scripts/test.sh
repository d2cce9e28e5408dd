#!/usr/bin/env bash
# Runs Switchyard's whole test suite on a fresh machine:
#   1. Rust unit, snapshot and integration tests (real server, real sockets, mock upstreams, real curl,
#      real PostgreSQL and Redis, which scripts/services.sh starts or says how to install);
#   2. the official openai-python SDK in strict mode against the real binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v curl >/dev/null || { echo "scripts/test.sh: curl is required (the seed replay runs it)" >&2; exit 1; }

echo "== services (PostgreSQL and Redis on this machine)"
bash scripts/services.sh

echo "== test dependencies (headless Chromium for the web UI tests)"
bash scripts/ui-test-deps.sh

echo "== cargo test"
cargo build --workspace --bins --quiet
cargo test --workspace

echo "== official SDK suite (tests/sdk)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
SWITCHYARD_BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/debug" .venv/bin/python -m pytest tests/sdk -q
