#!/usr/bin/env bash
# The test command the README gives: every crate's unit and integration
# tests, including the ones that start real ZooKeeper servers on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace "$@"
