# Helpers shared by the scripts in this folder (sourced, not run).
# Each script sets `set -euo pipefail` itself; these only define functions.

# The calling script's name, for messages.
SCRIPT_NAME=$(basename "$0")

# A progress line on stderr.
log() { printf '== %s\n' "$*" >&2; }

# An error on stderr, then exit 1.
die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }

# A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it,
# close).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Where cargo puts release binaries (honours CARGO_TARGET_DIR).
RELEASE_DIR=${CARGO_TARGET_DIR:-target}/release

# Builds the release binaries named as PACKAGE:BINARY (unless SKIP_BUILD=1)
# and checks each is in $RELEASE_DIR.
build_release() {
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        log "release build"
        local spec
        for spec in "$@"; do
            cargo build --release -p "${spec%%:*}" --bin "${spec##*:}"
        done
    fi
    for spec in "$@"; do
        [[ -x $RELEASE_DIR/${spec##*:} ]] || die "$RELEASE_DIR/${spec##*:} missing"
    done
}

# Sets GIT_COMMIT (short hash of HEAD) and GIT_DIRTY (true/false: tracked
# files differ from it; results/, README.md and docs/benchmarks.md, where
# the scripts write their reports, do not count).
# Call it before building, so it describes what the binaries are built from.
git_state() {
    GIT_COMMIT=$(git rev-parse --short HEAD)
    if [[ -n $(git status --porcelain --untracked-files=no -- . ':(exclude)results' ':(exclude)README.md' ':(exclude)docs/benchmarks.md') ]]; then
        GIT_DIRTY=true
    else
        GIT_DIRTY=false
    fi
    export GIT_COMMIT GIT_DIRTY
}

# A scratch folder in $WORK, and PIDS for background processes: both are
# cleaned up (processes stopped, folder removed) when the script exits.
scratch() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/mprpc-$1.XXXXXX")
    PIDS=()
    trap stop_scratch EXIT
}
stop_scratch() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}

# write_conf NAME [LINE...]: a config for a server on this machine (a free
# port of 127.0.0.1, the ZooKeeper at 127.0.0.1:$ZK_PORT, log files in
# $WORK/logs-NAME, warnings only, one reactor and one client I/O thread:
# the servers share one core), then each LINE (`key=value`, the caller's
# extras). Written to $WORK/NAME.conf, the file to start the server with,
# and, with $WORK/ left out of its paths, to $OUT/NAME.conf, the run's
# record. Prints the port.
write_conf() { # name [line...]
    local port
    port=$(free_port)
    {
        echo "rpcserverip=127.0.0.1"
        echo "rpcserverport=$port"
        echo "zookeeperip=127.0.0.1"
        echo "zookeeperport=$ZK_PORT"
        echo "log_dir=$WORK/logs-$1"
        echo "log_level=warn"
        echo "reactor_threads=1"
        echo "client_io_threads=1"
        printf '%s\n' "${@:2}"
    } >"$WORK/$1.conf"
    sed "s#$WORK/##g" "$WORK/$1.conf" >"$OUT/$1.conf"
    echo "$port"
}

# Waits up to SECONDS (default 10) for a listener on 127.0.0.1:PORT.
wait_port() { # port [seconds]
    local tries=$((${2:-10} * 20))
    for _ in $(seq 1 "$tries"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# Writes FILE: the facts every report's header gives about the run, as JSON:
# date, cores, CPU model, memory, kernel, rustc, the commit and dirty flag
# (git_state's: call it before building, or it is called here), and the changed files
# under src/, examples/ and loadgen/; then each NAME=VALUE argument (VALUE
# as JSON when it parses as JSON, else as a string).
machine_json() { # file [name=value ...]
    [[ -n ${GIT_COMMIT:-} ]] || git_state
    python3 - "$@" <<'PY'
import json, os, platform, subprocess, sys, time
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception as e:
        return f"unknown ({e})"
def field(path, name):
    return next((l.split(":", 1)[1].strip() for l in open(path) if l.startswith(name)), "unknown")
def value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text
facts = {
    "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    "nproc": os.cpu_count(),
    "cpu_model": field("/proc/cpuinfo", "model name"),
    "mem_total": field("/proc/meminfo", "MemTotal"),
    "kernel": platform.release(),
    "rustc": out("rustc", "-V"),
    "git_commit": os.environ["GIT_COMMIT"],
    "git_dirty": os.environ["GIT_DIRTY"] == "true",
    "git_dirty_src": out("git", "status", "--short", "--", "src", "examples", "loadgen").splitlines(),
}
facts.update((name, value(text)) for name, text in (arg.split("=", 1) for arg in sys.argv[2:]))
json.dump(facts, open(sys.argv[1], "w"), indent=2)
PY
}

# One line for a report that has no env.json: "2 cores (MODEL), rustc X".
machine_line() {
    local facts
    facts=$(mktemp)
    machine_json "$facts"
    python3 -c 'import json, sys; print("{nproc} cores ({cpu_model}), {rustc}".format(**json.load(open(sys.argv[1]))))' "$facts"
    rm -f "$facts"
}
