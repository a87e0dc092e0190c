#!/usr/bin/env bash
# The admin page `/` checked in a real browser: starts the seed's example
# provider (registry=none, free port) under load from the seed's consumer
# run in a loop, opens http://127.0.0.1:PORT/ in headless Chromium (Debian's
# `chromium`, installed by scripts/setup.sh; driven by status_page_browse.py),
# lets the page poll /status for ten seconds, and checks the rendered DOM:
# one table row per published method, each with a non-zero call count, and
# the Streams card's five figures and its outcomes (ok, cancelled,
# deadline_exceeded, unavailable).
# Keeps a screenshot.
#
# Writes OUT/status-page.png and OUT/status-page.md (the rows seen, with the
# commit they were taken at); OUT is results/ unless STATUS_PAGE_OUT is set
# (scripts/test.sh puts them under target/ so a test run leaves the tree
# clean). Exits non-zero, saying why, if the page is not right.
# Usage: scripts/status_page.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

OUT=${STATUS_PAGE_OUT:-results}
BIN=${CARGO_TARGET_DIR:-target}/debug
METHODS=(UserServiceRpc.Login UserServiceRpc.Register FriendServiceRpc.GetFriendsList)

command -v chromium >/dev/null || die "chromium not found (scripts/setup.sh installs it)"
git_state
scratch status-page
mkdir -p "$OUT"

log "build the example provider and consumer"
cargo build -q -p mprpc-examples --bin provider --bin consumer

port=$(free_port)
cat > "$WORK/page.conf" <<CONF
rpcserverip=127.0.0.1
rpcserverport=$port
registry=none
log_dir=$WORK/logs
reactor_threads=2
CONF

log "provider on 127.0.0.1:$port"
"$BIN/provider" -i "$WORK/page.conf" > "$WORK/provider.out" 2>&1 &
PIDS+=($!)
wait_port "$port" 30 || die "the provider did not listen on $port: $(cat "$WORK/provider.out")"

log "load: the seed's consumer in a loop"
(
    end=$((SECONDS + 90))   # bounded even if this script is killed hard
    while ((SECONDS < end)); do
        "$BIN/consumer" -i "$WORK/page.conf" > /dev/null 2>&1 || true
    done
) &
PIDS+=($!)
sleep 2

# Real time: the page polls /status once a second for ten seconds.
log "headless Chromium: open the page, wait 10 s, take its DOM and a screenshot"
timeout 120 python3 scripts/status_page_browse.py "http://127.0.0.1:$port/" 10 \
    "$WORK/dom.html" "$WORK/shot.png" "$WORK/chrome" ||
    die "chromium failed: $(tail -5 "$WORK/chrome/chromium.err" 2>/dev/null)"
[[ -s $WORK/shot.png ]] || die "no screenshot written"
cp "$WORK/shot.png" "$OUT/status-page.png"

log "check the rendered rows"
python3 - "$WORK/dom.html" "$OUT/status-page.md" "$GIT_COMMIT" "$GIT_DIRTY" "${METHODS[@]}" <<'PY'
import sys
from datetime import datetime, timezone
from html.parser import HTMLParser

dom, report, commit, dirty, methods = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]

class Rows(HTMLParser):
    """Collects each <tr data-method=...>'s cells by their data-col."""
    def __init__(self):
        super().__init__()
        self.rows, self.row, self.col = {}, None, None
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-method" in attrs:
            self.row = self.rows.setdefault(attrs["data-method"], {})
        elif tag == "td" and self.row is not None and "data-col" in attrs:
            self.col = attrs["data-col"]
    def handle_endtag(self, tag):
        if tag == "td":
            self.col = None
        elif tag == "tr":
            self.row = None
    def handle_data(self, data):
        if self.row is not None and self.col:
            self.row[self.col] = self.row.get(self.col, "") + data.strip()

parser = Rows()
parser.feed(open(dom, encoding="utf-8").read())
problems = []
for method in methods:
    row = parser.rows.get(method)
    if row is None:
        problems.append(f"no row for {method}")
    elif int(row.get("calls", "0") or 0) <= 0:
        problems.append(f"{method}: calls = {row.get('calls')!r}, expected > 0")
# The Streams card: its five figures, each a number (0 here: the seed's
# consumer opens no streams).
import re
streams = dict(re.findall(r'data-stream="([^"$]+)">[^<]*<b>([^<]*)</b>', open(dom, encoding="utf-8").read()))
for key in ["open", "opened", "ended", "messages sent", "messages received"]:
    if not re.fullmatch(r"[0-9.]+[kM]?", streams.get(key, "")):
        problems.append(f"streams card: {key} = {streams.get(key)!r}")
# Its outcomes line: the usual four codes, each a number.
outcomes = dict(re.findall(r'data-outcome="([^"$]+)">[^<]*<b>([^<]*)</b>', open(dom, encoding="utf-8").read()))
for code in ["ok", "cancelled", "deadline_exceeded", "unavailable"]:
    if not re.fullmatch(r"[0-9.]+[kM]?", outcomes.get(code, "")):
        problems.append(f"streams card: ended {code} = {outcomes.get(code)!r}")
if problems:
    sys.exit("status page check failed: " + "; ".join(problems) + f" (rows: {parser.rows})")

with open(report, "w", encoding="utf-8") as out:
    out.write("# The admin page in headless Chromium\n\n")
    out.write("Written by `scripts/status_page.sh`: the seed's example provider under load from\n")
    out.write("its consumer run in a loop, `/` opened in headless Chromium and left to poll\n")
    out.write("`/status` for 10 s; the rows below are read from the rendered DOM.\n")
    out.write("Screenshot: [status-page.png](status-page.png).\n\n")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out.write(f"commit {commit} (dirty: {dirty}), {stamp}\n\n")
    out.write("| method | calls | calls/s | errors | p50 µs | p99 µs |\n|---|---|---|---|---|---|\n")
    for method in methods:
        r = parser.rows[method]
        out.write(f"| {method} | {r['calls']} | {r['rate']} | {r['errors']} | {r['p50']} | {r['p99']} |\n")
    out.write("\nStreams card (the seed's consumer opens none): "
              + ", ".join(f"{k} {v}" for k, v in streams.items())
              + "; ended by outcome: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()) + ".\n")
print(f"status page: {len(methods)} method rows with calls > 0")
PY
log "ok: $OUT/status-page.png, $OUT/status-page.md"
