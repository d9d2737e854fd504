#!/usr/bin/env bash
# Run GenHub's local infrastructure on loopback, with all state and logs under
# <repo>/.state/ (git-ignored). No systemd needed.
#
#   scripts/infra.sh up [SERVICE...]
#                             install tools if needed (scripts/tools.sh), start
#                             whatever is not running, wait until all answer
#   scripts/infra.sh down [SERVICE...]
#                             stop what this script started (harmless if none)
#                             SERVICE: rabbitmq redis ferretdb versitygw (default: all)
#   scripts/infra.sh status   print each service's state (exit 3 if any is down)
#   scripts/infra.sh restart rabbitmq|ferretdb
#                             for fault tests: take one service down and bring it
#                             back (RabbitMQ: stop_app/start_app keeps the node and
#                             its durable queues; FerretDB: stop and start again)
#
#   RabbitMQ  amqp://guest:guest@127.0.0.1:5672/   management http://127.0.0.1:15672/
#   Redis     redis://127.0.0.1:6379/0
#   FerretDB  mongodb://127.0.0.1:27017/           (SQLite backend)
#   versitygw http://127.0.0.1:7070/  S3 API from a folder; access key "genhub",
#             secret "genhub-dev-secret" (development only); bucket "genhub-media"
#
# If a service's port is already taken by a server that answers like that
# service (started earlier by this script or by someone else), `up` uses it and
# does not start a second one; `down` leaves servers it did not start alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.state"
BIN_DIR="$ROOT/.cache/bin"
HOST=127.0.0.1

AMQP_PORT=5672
MGMT_PORT=15672
REDIS_PORT=6379
MONGO_PORT=27017
S3_PORT=7070   # versitygw's own default

RABBIT_NODE="genhub@localhost"
RABBIT_DIR="$STATE/rabbitmq"
RABBIT_LOG_DIR="$RABBIT_DIR/log"
RABBIT_LOG="$RABBIT_LOG_DIR/$RABBIT_NODE.log"   # the node's own log
RABBIT_CONSOLE="$RABBIT_LOG_DIR/console.log"    # stdout/stderr of the launcher
RABBIT_PID="$RABBIT_DIR/rabbitmq.pid"           # written by the node (beam.smp)
RABBIT_LAUNCHER_PID="$RABBIT_DIR/launcher.pid"  # the rabbitmq-server script
RABBIT_LIB=/usr/lib/rabbitmq/bin   # Debian's scripts, bypassing the su-to-rabbitmq wrapper
RABBIT_TIMEOUT=90

REDIS_DIR="$STATE/redis"
REDIS_LOG="$REDIS_DIR/redis.log"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_TIMEOUT=20

FERRET_DIR="$STATE/ferretdb"
FERRET_LOG="$FERRET_DIR/ferretdb.log"
FERRET_PID="$FERRET_DIR/ferretdb.pid"
FERRET_BIN="$BIN_DIR/ferretdb"
FERRET_TIMEOUT=30

VGW_DIR="$STATE/versitygw"
VGW_LOG="$VGW_DIR/versitygw.log"
VGW_PID="$VGW_DIR/versitygw.pid"
VGW_BIN="$BIN_DIR/versitygw"
VGW_TIMEOUT=30
# Development credentials of the local object store (never used outside loopback).
VGW_ACCESS_KEY=genhub
VGW_SECRET_KEY=genhub-dev-secret
VGW_BUCKET=genhub-media

log() { printf 'infra.sh: %s\n' "$*" >&2; }
die() { printf 'infra.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# Print the last lines of the given log files to stderr (for failures).
show_logs() {
    local f
    for f in "$@"; do
        [[ -s "$f" ]] || continue
        printf -- '--- last lines of %s ---\n' "$f" >&2
        tail -n 12 "$f" >&2
    done
}

# fail SERVICE MESSAGE LOG... : a failure that names the service and its logs.
fail() {
    local service="$1" msg="$2"
    shift 2
    show_logs "$@"
    die "$service: $msg (log: $*)"
}

# conflict SERVICE PORT WHAT LOG: the port is taken by something else.
conflict() {
    die "$1: port $HOST:$2 is in use by something that $3; free it or stop it (see: ss -ltnp 'sport = :$2'; log: $4)"
}

# ------------------------------------------------------------- helpers ----

# shellcheck disable=SC2016  # $0/$1 are expanded by the inner bash
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null; }

# pid_matches PID PATTERN: PID is alive and its command line contains PATTERN.
pid_matches() {
    local pid="$1" pattern="$2" cmdline
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
    [[ "$cmdline" == *"$pattern"* ]]
}

read_pid() {
    if [[ -f "$1" ]]; then tr -dc '0-9' <"$1"; fi
}

# ours PIDFILE PATTERN: prints the pid if the pidfile names a live process
# whose command line contains PATTERN.
ours() {
    local pid
    pid="$(read_pid "$1")"
    pid_matches "$pid" "$2" && printf '%s\n' "$pid"
}

# stop_pid SERVICE PIDFILE PATTERN LOG: TERM, wait up to 30 s, then KILL.
stop_pid() {
    local service="$1" pidfile="$2" pattern="$3" logfile="$4" pid i
    pid="$(ours "$pidfile" "$pattern")" || { rm -f "$pidfile"; return 1; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        pid_matches "$pid" "$pattern" || break
        sleep 0.1
    done
    if pid_matches "$pid" "$pattern"; then
        log "$service: pid $pid ignored SIGTERM for 30 s, sending SIGKILL (log: $logfile)"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
    log "$service: stopped (pid $pid)"
}

# wait_ready SERVICE TIMEOUT CHECK_FN ALIVE_FN LOG... : poll CHECK_FN until it
# succeeds; fail early when ALIVE_FN says the process died, or at the deadline.
wait_ready() {
    local service="$1" timeout="$2" check="$3" alive="$4"
    shift 4
    local deadline=$((SECONDS + timeout))
    while ! "$check"; do
        "$alive" || fail "$service" "exited during start-up" "$@"
        ((SECONDS < deadline)) || fail "$service" "not ready after ${timeout}s" "$@"
        sleep 0.5
    done
}

# -------------------------------------------------------------- Redis ----

redis_answers() {
    [[ "$(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]
}
redis_ours() { ours "$REDIS_PID" redis-server >/dev/null; }
# Until the daemon has written its pidfile we cannot tell, so count as alive.
redis_alive() { [[ ! -s "$REDIS_PID" ]] || redis_ours; }

redis_start() {
    if redis_ours; then
        return 0
    fi
    if port_open "$REDIS_PORT"; then
        redis_answers || conflict redis "$REDIS_PORT" "does not answer PING with PONG" "$REDIS_LOG"
        log "redis: a server not started by infra.sh already answers on $HOST:$REDIS_PORT; using it"
        return 0
    fi
    command -v redis-server >/dev/null || fail redis "redis-server not found; run scripts/tools.sh" "$REDIS_LOG"
    rm -f "$REDIS_PID"
    log "redis: starting on $HOST:$REDIS_PORT"
    # --save "" and no AOF: nothing is persisted, a restart starts empty.
    # stdout/stderr (errors before the log file is open) go to the same log.
    # shellcheck disable=SC2094  # redis-server only appends to the log
    redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" \
        --dir "$REDIS_DIR" --logfile "$REDIS_LOG" --pidfile "$REDIS_PID" \
        --save "" --appendonly no </dev/null >>"$REDIS_LOG" 2>&1 ||
        fail redis "redis-server failed to start" "$REDIS_LOG"
}

redis_wait() { wait_ready redis "$REDIS_TIMEOUT" redis_answers redis_alive "$REDIS_LOG"; }

redis_stop() {
    stop_pid redis "$REDIS_PID" redis-server "$REDIS_LOG" || redis_not_ours_note
}
redis_not_ours_note() {
    if port_open "$REDIS_PORT"; then
        log "redis: not started by infra.sh; leaving the server on $HOST:$REDIS_PORT alone"
    else
        log "redis: not running"
    fi
}

# ----------------------------------------------------------- FerretDB ----

# A real `ping` command over the MongoDB wire protocol (OP_MSG), so this needs
# no driver. Accepts any server that answers ok: 1.
# Debian's python3 first: a pyenv shim can fail in a directory whose
# .python-version names an interpreter that is not installed.
mongo_ping() {
    local py=/usr/bin/python3
    [[ -x "$py" ]] || py="$(command -v python3 || true)"
    [[ -n "$py" ]] || { port_open "$MONGO_PORT"; return; }
    timeout 5 "$py" - "$HOST" "$MONGO_PORT" <<'PY' 2>/dev/null
import socket, struct, sys

host, port = sys.argv[1], int(sys.argv[2])
body = (b"\x10ping\x00" + struct.pack("<i", 1)
        + b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00")
doc = struct.pack("<i", len(body) + 5) + body + b"\x00"
msg = struct.pack("<I", 0) + b"\x00" + doc            # flagBits, section kind 0
header = struct.pack("<iiii", 16 + len(msg), 1, 0, 2013)  # OP_MSG
with socket.create_connection((host, port), timeout=2) as s:
    s.sendall(header + msg)
    buf = b""
    while len(buf) < 4 or len(buf) < struct.unpack("<i", buf[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(1)
        buf += chunk
ok = (b"\x01ok\x00" + struct.pack("<d", 1.0) in buf
      or b"\x10ok\x00" + struct.pack("<i", 1) in buf)
sys.exit(0 if ok else 1)
PY
}

ferret_answers() { port_open "$MONGO_PORT" && mongo_ping; }
ferret_ours() { ours "$FERRET_PID" "$FERRET_BIN" >/dev/null; }

ferret_start() {
    if ferret_ours; then
        return 0
    fi
    if port_open "$MONGO_PORT"; then
        mongo_ping || conflict ferretdb "$MONGO_PORT" "does not answer a MongoDB ping" "$FERRET_LOG"
        log "ferretdb: a MongoDB-protocol server not started by infra.sh already answers on $HOST:$MONGO_PORT; using it"
        return 0
    fi
    [[ -x "$FERRET_BIN" ]] || fail ferretdb "$FERRET_BIN not found; run scripts/tools.sh" "$FERRET_LOG"
    mkdir -p "$FERRET_DIR/data"
    rm -f "$FERRET_PID"
    # Dropping a database removes its .sqlite file but FerretDB leaves the -wal/-shm beside
    # it (benchmarks leave hundreds of MB); with no server running and no main file they are
    # unreadable garbage, so clear them before starting.
    local side
    for side in "$FERRET_DIR"/data/*.sqlite-wal "$FERRET_DIR"/data/*.sqlite-shm; do
        [[ -e "$side" && ! -e "${side%-*}" ]] && rm -f "$side"
    done
    log "ferretdb: starting on $HOST:$MONGO_PORT (SQLite in $FERRET_DIR/data)"
    # setsid: own session, so the server outlives this shell and its terminal.
    # (Not a process-group leader here, so setsid execs without forking and $!
    # is FerretDB's pid.) --debug-addr=- turns off the metrics/pprof listener
    # (default 127.0.0.1:8088).
    setsid "$FERRET_BIN" \
        --handler=sqlite \
        --sqlite-url="file:$FERRET_DIR/data/" \
        --listen-addr="$HOST:$MONGO_PORT" \
        --state-dir="$FERRET_DIR" \
        --telemetry=disable \
        --debug-addr=- \
        --log-level=warn \
        </dev/null >>"$FERRET_LOG" 2>&1 &
    printf '%s\n' "$!" >"$FERRET_PID"
}

ferret_wait() { wait_ready ferretdb "$FERRET_TIMEOUT" ferret_answers ferret_ours "$FERRET_LOG"; }

ferret_stop() {
    stop_pid ferretdb "$FERRET_PID" "$FERRET_BIN" "$FERRET_LOG" && return 0
    if port_open "$MONGO_PORT"; then
        log "ferretdb: not started by infra.sh; leaving the server on $HOST:$MONGO_PORT alone"
    else
        log "ferretdb: not running"
    fi
}

# ---------------------------------------------------------- versitygw ----

# An anonymous GET / answers an S3 XML error (AccessDenied): enough to know an
# S3 API listens, with no credentials in this script's checks.
vgw_answers() {
    port_open "$S3_PORT" &&
        curl -sS --max-time 3 "http://$HOST:$S3_PORT/" 2>/dev/null | grep -q '<Error>'
}
vgw_ours() { ours "$VGW_PID" "$VGW_BIN" >/dev/null; }

vgw_start() {
    if vgw_ours; then
        return 0
    fi
    if port_open "$S3_PORT"; then
        vgw_answers || conflict versitygw "$S3_PORT" "does not answer like an S3 API" "$VGW_LOG"
        log "versitygw: an S3 server not started by infra.sh already answers on $HOST:$S3_PORT; using it"
        return 0
    fi
    [[ -x "$VGW_BIN" ]] || fail versitygw "$VGW_BIN not found; run scripts/tools.sh" "$VGW_LOG"
    # The posix backend serves each top-level folder as a bucket; metadata (ACLs,
    # content types) goes to a sidecar folder, so no extended-attribute support
    # is needed from the filesystem. The development bucket is such a folder.
    mkdir -p "$VGW_DIR/data/$VGW_BUCKET" "$VGW_DIR/meta"
    rm -f "$VGW_PID"
    log "versitygw: starting on $HOST:$S3_PORT (data in $VGW_DIR/data)"
    env ROOT_ACCESS_KEY="$VGW_ACCESS_KEY" ROOT_SECRET_KEY="$VGW_SECRET_KEY" \
        setsid "$VGW_BIN" --port "$HOST:$S3_PORT" --quiet \
        posix --sidecar "$VGW_DIR/meta" "$VGW_DIR/data" \
        </dev/null >>"$VGW_LOG" 2>&1 &
    printf '%s\n' "$!" >"$VGW_PID"
}

vgw_wait() { wait_ready versitygw "$VGW_TIMEOUT" vgw_answers vgw_ours "$VGW_LOG"; }

vgw_stop() {
    stop_pid versitygw "$VGW_PID" "$VGW_BIN" "$VGW_LOG" && return 0
    if port_open "$S3_PORT"; then
        log "versitygw: not started by infra.sh; leaving the server on $HOST:$S3_PORT alone"
    else
        log "versitygw: not running"
    fi
}

# ----------------------------------------------------------- RabbitMQ ----

# Environment for running RabbitMQ's scripts as root for our node. HOME points
# at .state/rabbitmq so this node's Erlang cookie lives there, for the server
# and for our rabbitmqctl calls alike.
RABBIT_ENV=(
    HOME="$RABBIT_DIR"
    RABBITMQ_NODENAME="$RABBIT_NODE"
    RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/rabbitmq-env.conf"
    RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq.conf"
    RABBITMQ_ADVANCED_CONFIG_FILE="$RABBIT_DIR/advanced.config"
    RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins"
    RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia"
    RABBITMQ_LOG_BASE="$RABBIT_LOG_DIR"
    RABBITMQ_PID_FILE="$RABBIT_PID"
    ERL_CRASH_DUMP="$RABBIT_LOG_DIR/erl_crash.dump"
    ERL_EPMD_ADDRESS="$HOST"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
)

rabbit_ctl() { env "${RABBIT_ENV[@]}" timeout 60 "$RABBIT_LIB/rabbitmqctl" -n "$RABBIT_NODE" "$@"; }

rabbit_mgmt_ok() {
    curl -fsS -o /dev/null --max-time 3 -u guest:guest \
        "http://$HOST:$MGMT_PORT/api/overview" 2>/dev/null
}
rabbit_answers() { port_open "$AMQP_PORT" && rabbit_mgmt_ok; }
rabbit_ours() {
    ours "$RABBIT_PID" "-home $RABBIT_DIR " >/dev/null ||
        ours "$RABBIT_LAUNCHER_PID" "$RABBIT_LIB/rabbitmq-server" >/dev/null
}

rabbit_write_config() {
    mkdir -p "$RABBIT_DIR/mnesia" "$RABBIT_LOG_DIR"
    cat >"$RABBIT_DIR/rabbitmq.conf" <<EOF
# Written by scripts/infra.sh on every 'up'; edit the script, not this file.
listeners.tcp.default = $HOST:$AMQP_PORT
management.tcp.ip = $HOST
management.tcp.port = $MGMT_PORT
# guest/guest may log in, from loopback only (RabbitMQ's default)
loopback_users.guest = true
log.file.level = info
log.console = false
EOF
    printf '[rabbitmq_management].\n' >"$RABBIT_DIR/enabled_plugins"
    # Empty env file: keep /etc/rabbitmq/rabbitmq-env.conf out of our node.
    printf '# Written by scripts/infra.sh; intentionally empty.\n' >"$RABBIT_DIR/rabbitmq-env.conf"
    # Erlang cookie. Reuse Debian's (/var/lib/rabbitmq/.erlang.cookie) when
    # readable, so that Debian's own `rabbitmqctl -n genhub@localhost ...`
    # (which runs as user rabbitmq, HOME=/var/lib/rabbitmq) works as well.
    local cookie="$RABBIT_DIR/.erlang.cookie"
    if [[ ! -s "$cookie" ]]; then
        if [[ -r /var/lib/rabbitmq/.erlang.cookie ]]; then
            cat /var/lib/rabbitmq/.erlang.cookie >"$cookie"
        else
            # (tr dies of SIGPIPE when head is done: not an error here)
            { LC_ALL=C tr -dc '[:upper:]' </dev/urandom || true; } | head -c 20 >"$cookie"
        fi
    fi
    chmod 400 "$cookie"
}

rabbit_start() {
    if rabbit_ours; then
        return 0
    fi
    if port_open "$AMQP_PORT"; then
        rabbit_mgmt_ok || conflict rabbitmq "$AMQP_PORT" "is not a RabbitMQ whose management API (http://$HOST:$MGMT_PORT/api/overview) answers guest/guest" "$RABBIT_LOG"
        log "rabbitmq: a broker not started by infra.sh already answers on $HOST:$AMQP_PORT; using it"
        return 0
    fi
    port_open "$MGMT_PORT" &&
        conflict rabbitmq "$MGMT_PORT" "is not our RabbitMQ's management listener" "$RABBIT_LOG"
    [[ -x "$RABBIT_LIB/rabbitmq-server" ]] ||
        fail rabbitmq "$RABBIT_LIB/rabbitmq-server not found; run scripts/tools.sh" "$RABBIT_LOG"
    rabbit_write_config
    rm -f "$RABBIT_PID" "$RABBIT_LAUNCHER_PID"
    log "rabbitmq: starting node $RABBIT_NODE on $HOST:$AMQP_PORT (management $HOST:$MGMT_PORT)"
    # Foreground mode (not -detached) so start-up errors land in console.log;
    # setsid detaches it from this shell and its terminal.
    # One simple command after & (no subshell, no function), so $! is the
    # launcher's own pid (env and setsid exec) and no shell of ours lingers
    # holding this script's stdout open.
    env -C "$RABBIT_DIR" "${RABBIT_ENV[@]}" setsid "$RABBIT_LIB/rabbitmq-server" \
        </dev/null >>"$RABBIT_CONSOLE" 2>&1 &
    printf '%s\n' "$!" >"$RABBIT_LAUNCHER_PID"
}

rabbit_wait() {
    wait_ready rabbitmq "$RABBIT_TIMEOUT" rabbit_answers rabbit_ours "$RABBIT_LOG" "$RABBIT_CONSOLE"
}

rabbit_stop() {
    if ! rabbit_ours; then
        rm -f "$RABBIT_PID" "$RABBIT_LAUNCHER_PID"
        if port_open "$AMQP_PORT"; then
            log "rabbitmq: not started by infra.sh; leaving the broker on $HOST:$AMQP_PORT alone"
        else
            log "rabbitmq: not running"
        fi
        return 0
    fi
    local pid
    pid="$(read_pid "$RABBIT_PID")"
    log "rabbitmq: stopping node $RABBIT_NODE${pid:+ (pid $pid)}"
    # `rabbitmqctl stop PIDFILE` returns once the node's OS process has exited.
    if ! rabbit_ctl stop ${pid:+"$RABBIT_PID"} >>"$RABBIT_CONSOLE" 2>&1; then
        log "rabbitmq: rabbitmqctl stop failed; signalling the processes (log: $RABBIT_CONSOLE)"
        stop_pid rabbitmq "$RABBIT_PID" "-home $RABBIT_DIR " "$RABBIT_LOG" || true
    fi
    # The launcher script exits when the node does; make sure.
    stop_pid rabbitmq-launcher "$RABBIT_LAUNCHER_PID" "$RABBIT_LIB/rabbitmq-server" "$RABBIT_CONSOLE" >/dev/null 2>&1 || true
    rm -f "$RABBIT_PID" "$RABBIT_LAUNCHER_PID"
    rabbit_ours && fail rabbitmq "still running after stop" "$RABBIT_LOG" "$RABBIT_CONSOLE"
    log "rabbitmq: stopped"
}

# ------------------------------------------------------------ commands ----

# Fail on port conflicts before launching anything, so a failed `up` does not
# leave half of the services running.
preflight() {
    if ! rabbit_ours && port_open "$AMQP_PORT" && ! rabbit_mgmt_ok; then
        rabbit_start # reports the conflict
    fi
    if ! redis_ours && port_open "$REDIS_PORT" && ! redis_answers; then
        redis_start
    fi
    if ! ferret_ours && port_open "$MONGO_PORT" && ! mongo_ping; then
        ferret_start
    fi
    if ! vgw_ours && port_open "$S3_PORT" && ! vgw_answers; then
        vgw_start
    fi
}

ALL_SERVICES=(rabbitmq redis ferretdb versitygw)

# selected SERVICE ARGS...: whether SERVICE is named in ARGS (or ARGS is empty).
selected() {
    local service="$1" arg
    shift
    (($# == 0)) && return 0
    for arg in "$@"; do [[ "$arg" == "$service" ]] && return 0; done
    return 1
}

check_services() {
    local arg
    for arg in "$@"; do
        selected "$arg" "${ALL_SERVICES[@]}" || die "unknown service: $arg (known: ${ALL_SERVICES[*]})"
    done
}

cmd_up() {
    check_services "$@"
    "$ROOT/scripts/tools.sh"
    mkdir -p "$RABBIT_LOG_DIR" "$REDIS_DIR" "$FERRET_DIR" "$VGW_DIR"
    local t0=$SECONDS
    preflight
    # Launch everything first (RabbitMQ is by far the slowest), then wait.
    if selected rabbitmq "$@"; then rabbit_start; fi
    if selected redis "$@"; then redis_start; fi
    if selected ferretdb "$@"; then ferret_start; fi
    if selected versitygw "$@"; then vgw_start; fi
    if selected redis "$@"; then redis_wait; fi
    if selected ferretdb "$@"; then ferret_wait; fi
    if selected versitygw "$@"; then vgw_wait; fi
    if selected rabbitmq "$@"; then rabbit_wait; fi
    log "services ready ($((SECONDS - t0))s)"
    cmd_status
}

cmd_down() {
    check_services "$@"
    if selected versitygw "$@"; then vgw_stop; fi
    if selected ferretdb "$@"; then ferret_stop; fi
    if selected redis "$@"; then redis_stop; fi
    if selected rabbitmq "$@"; then rabbit_stop; fi
}

# status_line NAME OURS_FN ANSWERS_FN PIDFILE ENDPOINT LOG
status_line() {
    local name="$1" ours_fn="$2" answers_fn="$3" pidfile="$4" endpoint="$5" logfile="$6" state pid
    pid="$(read_pid "$pidfile")"
    [[ -n "$pid" || "$name" != rabbitmq ]] || pid="launcher $(read_pid "$RABBIT_LAUNCHER_PID")"
    if "$answers_fn"; then
        if "$ours_fn"; then
            state="up (pid $pid, started by infra.sh)"
        else
            state="up (not started by infra.sh)"
        fi
    elif "$ours_fn"; then
        state="STARTING or NOT ANSWERING (pid $pid)"
        STATUS_RC=3
    else
        state="down"
        STATUS_RC=3
    fi
    printf '%-9s %-44s %s\n          log: %s\n' "$name" "$state" "$endpoint" "$logfile"
}

cmd_status() {
    STATUS_RC=0
    status_line rabbitmq rabbit_ours rabbit_answers "$RABBIT_PID" \
        "amqp://$HOST:$AMQP_PORT http://$HOST:$MGMT_PORT" "$RABBIT_LOG"
    status_line redis redis_ours redis_answers "$REDIS_PID" \
        "redis://$HOST:$REDIS_PORT" "$REDIS_LOG"
    status_line ferretdb ferret_ours ferret_answers "$FERRET_PID" \
        "mongodb://$HOST:$MONGO_PORT" "$FERRET_LOG"
    status_line versitygw vgw_ours vgw_answers "$VGW_PID" \
        "http://$HOST:$S3_PORT (bucket $VGW_BUCKET)" "$VGW_LOG"
    return "$STATUS_RC"
}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

cmd_restart() {
    case "${1:-}" in
        rabbitmq)
            rabbit_ours || die "rabbitmq: not started by infra.sh; will not restart it"
            rabbit_ctl stop_app >/dev/null
            log "rabbitmq: application stopped"
            sleep "${RESTART_PAUSE:-1}"
            rabbit_ctl start_app >/dev/null
            rabbit_wait
            ;;
        ferretdb)
            ferret_ours || die "ferretdb: not started by infra.sh; will not restart it"
            ferret_stop
            sleep "${RESTART_PAUSE:-1}"
            ferret_start
            ferret_wait
            ;;
        *) die "restart takes rabbitmq or ferretdb" ;;
    esac
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    restart) shift; cmd_restart "$@" ;;
    down) shift; cmd_down "$@" ;;
    status) cmd_status ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
