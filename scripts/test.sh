#!/usr/bin/env bash
# The test command the README gives: every crate's unit and integration
# tests, including the ones that start real ZooKeeper servers on free ports,
# then the admin page in headless Chromium (scripts/status_page.sh; its
# screenshot and report go to target/status-page/, leaving results/ alone).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace "$@"
STATUS_PAGE_OUT=${STATUS_PAGE_OUT:-${CARGO_TARGET_DIR:-target}/status-page} bash scripts/status_page.sh
