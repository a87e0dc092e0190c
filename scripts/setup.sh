#!/usr/bin/env bash
# One-time set-up of a fresh Debian machine for mprpc: the Rust toolchain is
# assumed (rustup); this installs what tests, demos and benchmarks need:
#   - zookeeper  (a real Apache ZooKeeper for the registry tests and demo)
#   - redis-server  (loadgen's `--target redis` test starts one; the
#     comparison's yardstick)
#   - redis-tools  (redis-benchmark, the comparison's cross-check;
#     benchmarks only: skipped with --no-bench)
#   - nghttp2-client (h2load: tonic through an independent HTTP/2 client),
#     sockperf (the loopback floor), linux-perf (server syscalls per call),
#     librsvg2-bin (rsvg-convert, the plots as PNG); benchmarks only
#   - chromium, fonts-dejavu-core  (scripts/status_page.sh opens the admin
#     page in headless Chromium; scripts/test.sh runs it)
#   - iproute2, nftables  (scripts/faults.sh and its test build a network of
#     namespaces and cut, drop or redirect its links)
# Java comes with the machine (ZooKeeper needs a JRE; installed if missing).
# Usage: scripts/setup.sh [--no-bench]
set -euo pipefail

want=(zookeeper redis-server chromium fonts-dejavu-core iproute2 nftables)
[[ "${1:-}" == "--no-bench" ]] || want+=(redis-tools nghttp2-client sockperf linux-perf librsvg2-bin)
command -v java >/dev/null 2>&1 || want+=(default-jre-headless)

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: system packages already installed"
fi

# Debian's zookeeper and redis-server packages enable system services on
# some set-ups; our scripts and tests start their own servers on free ports,
# so stop them.
for svc in zookeeper redis-server; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

ls /usr/share/java/zookeeper.jar >/dev/null
command -v redis-server >/dev/null
command -v chromium >/dev/null
echo "setup: done (zookeeper jar: /usr/share/java/zookeeper.jar, java: $(command -v java))"
