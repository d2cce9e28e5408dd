#!/usr/bin/env bash
# Installs what the web UI's browser tests (crates/switchyard-gateway/tests/ui_browser.rs) need: Debian's
# headless Chromium and its WebDriver server. Idempotent: does nothing when both are already there.
# The tests drive Chromium over WebDriver from Rust (a small client over reqwest), so no Node or npm.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ui-test-deps: chromium/chromedriver missing and not root; run: apt-get install -y chromium chromium-driver" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
chromium --version
chromedriver --version
