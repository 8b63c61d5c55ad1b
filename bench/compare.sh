#!/usr/bin/env bash
# Runs one `ferrocore bench` scenario against Mosquitto and against Ferrocore in the same run,
# the way ../shared/reference/peer-baselines.md measured the peers: a fresh broker per run, the
# brokers back to back (A B A B A B), the median of 3 per figure.
#
#   bench/compare.sh SCENARIO [ferrocore bench args...]
#   bench/compare.sh p2p --qos 1 --pairs 100 --inflight 16
#   bench/compare.sh idle --tls --clients 10000 --bind-addrs 127.0.0.2..5
#
# Each broker listens on free loopback ports chosen at run time (never 1883). With --tls the
# bench connects to Mosquitto's TLS listener (throwaway P-256 server certificate made here) and to
# an anonymous mqtts listener of Ferrocore (its own P-256 certificate from --data-dir), and is
# given the right --ca-file for each.
#
# Environment:
#   ROUNDS=3              rounds (each runs both brokers once)
#   FERROCORE_BIN=path    binary to use [default: $CARGO_TARGET_DIR or ./target, release]
#   NO_BUILD=1            do not run `cargo build --release -p ferrocore` first
#   FERROCORE_SERVE_ARGS  extra arguments for `ferrocore serve`
#   KEEP=1                keep the scratch directory (logs, configs, per-run outputs)
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
scenario=$1
shift
args=("$@")

repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-3}
bin=${FERROCORE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ferrocore}
mosquitto=/usr/sbin/mosquitto

tls=0
for a in "${args[@]}"; do
    case $a in
        --tls) tls=1 ;;
        --port | --port=* | --host | --host=* | --broker-pid | --broker-pid=* | --ca-file | --ca-file=*)
            echo "compare.sh sets $a itself" >&2
            exit 2
            ;;
    esac
done

log() { printf '%s\n' "$*" >&2; }

# --- prerequisites (idempotent) -------------------------------------------------------------
if [ ! -x "$mosquitto" ]; then
    log "installing mosquitto (Debian package)"
    sudo_=""
    [ "$(id -u)" = 0 ] || sudo_=sudo
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq mosquitto >/dev/null
fi
if [ "${NO_BUILD:-0}" != 1 ] && [ -z "${FERROCORE_BIN:-}" ]; then
    (cd "$repo" && cargo build --release -q -p ferrocore)
fi
[ -x "$bin" ] || { log "no ferrocore binary at $bin"; exit 1; }

work=$(mktemp -d /tmp/ferrocore-compare.XXXXXX)
chmod 755 "$work" # Mosquitto started as root reads its certificate as user mosquitto
broker_pid=""

stop_broker() {
    [ -n "$broker_pid" ] || return 0
    kill -TERM "$broker_pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$broker_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=""
}
cleanup() {
    stop_broker
    if [ "${KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port, pid
    for _ in $(seq 100); do
        kill -0 "$2" 2>/dev/null || return 1
        if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# --- Mosquitto: exactly the baseline configuration (peer-baselines §4) -----------------------
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key" 2>/dev/null
openssl req -x509 -new -key "$work/ca.key" -subj /CN=bench-ca -days 2 -out "$work/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$work/server.key" 2>/dev/null
openssl req -new -key "$work/server.key" -subj /CN=localhost -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >"$work/server.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days 2 -extfile "$work/server.ext" -out "$work/server.pem" 2>/dev/null
chmod 644 "$work/server.key" "$work/server.pem" "$work/ca.pem"

start_mosquitto() { # sets broker_pid, port, ca
    local plain tlsport
    plain=$(free_port)
    tlsport=$(free_port)
    cat >"$work/mosquitto.conf" <<EOF
per_listener_settings false
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
listener $plain 127.0.0.1
listener $tlsport 127.0.0.1
certfile $work/server.pem
keyfile $work/server.key
EOF
    "$mosquitto" -c "$work/mosquitto.conf" 2>>"$work/mosquitto.log" &
    broker_pid=$!
    if [ $tls = 1 ]; then port=$tlsport; ca=$work/ca.pem; else port=$plain; ca=""; fi
    wait_port "$port" "$broker_pid" || { log "mosquitto did not start:"; tail -5 "$work/mosquitto.log" >&2; exit 1; }
}

# --- Ferrocore: serve --dev on :0 ports, read back from listeners.json ------------------------
cat >"$work/ferrocore.toml" <<'EOF'
# An anonymous TLS listener, so TLS runs compare like with like (Mosquitto: allow_anonymous).
[[listener]]
name = "bench-tls"
address = "127.0.0.1:0"
transport = "mqtts"
anonymous = true
EOF

start_ferrocore() { # round; sets broker_pid, port, ca
    local dd=$work/ferrocore-data-$1 name
    # shellcheck disable=SC2086
    "$bin" serve --dev --config "$work/ferrocore.toml" --data-dir "$dd" --log-level warn \
        --listen-mqtt 127.0.0.1:0 --listen-mqtts 127.0.0.1:0 --listen-https 127.0.0.1:0 \
        ${FERROCORE_SERVE_ARGS:-} 2>>"$work/ferrocore.log" >&2 &
    broker_pid=$!
    for _ in $(seq 200); do
        [ -s "$dd/listeners.json" ] && break
        kill -0 "$broker_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$dd/listeners.json" ] || { log "ferrocore did not start:"; tail -5 "$work/ferrocore.log" >&2; exit 1; }
    if [ $tls = 1 ]; then name=bench-tls; ca=$dd/root-ca.pem; else name=mqtt; ca=""; fi
    port=$(python3 -c 'import json,sys
ls = json.load(open(sys.argv[1]))["listeners"]
print([l["address"].rsplit(":", 1)[1] for l in ls if l["name"] == sys.argv[2]][0])' "$dd/listeners.json" "$name")
    wait_port "$port" "$broker_pid" || { log "ferrocore is not accepting on $port"; exit 1; }
}

run_one() { # broker, round
    local out=$work/$1-$2.out extra=()
    if [ "$1" = mosquitto ]; then start_mosquitto; else start_ferrocore "$2"; fi
    [ -z "$ca" ] || extra=(--ca-file "$ca")
    sleep 0.5
    if ! timeout 1800 "$bin" bench "$scenario" --host 127.0.0.1 --port "$port" --broker-pid "$broker_pid" \
        "${extra[@]}" "${args[@]}" >"$out" 2>"$work/$1-$2.err"; then
        log "bench against $1 failed (round $2):"
        tail -15 "$work/$1-$2.err" "$out" >&2 || true
    fi
    stop_broker
    local line
    line=$(grep '^scenario=' "$out" | tail -1 || true)
    if [ -n "$line" ]; then
        echo "$line broker=$1" | tee -a "$work/lines" >&2
    fi
    sed -n '/^  errors/,$p' "$out" | grep -v '^scenario=' | grep -v '^  errors *0$' >&2 || true
    sleep 1
}

log "ferrocore bench $scenario ${args[*]}  ($rounds rounds, Mosquitto $("$mosquitto" -h 2>/dev/null | head -1 | awk '{print $3}') vs $bin)"
: >"$work/lines"
for r in $(seq "$rounds"); do
    run_one mosquitto "$r"
    run_one ferrocore "$r"
done

# --- medians and ratio -------------------------------------------------------------------------
python3 - "$work/lines" <<'EOF'
import statistics, sys

runs = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    runs.setdefault(kv["broker"], []).append(kv)

def num(v):
    try:
        return float(v)
    except ValueError:
        return None

med = {}
print()
print(f"# median of {max((len(v) for v in runs.values()), default=0)} runs per broker [msgs_per_s min-max]")
for broker in ("mosquitto", "ferrocore"):
    rs = runs.get(broker, [])
    if not rs:
        print(f"scenario=? broker={broker} no successful run")
        continue
    keys = []  # union of the runs' keys, in order (undefined figures are left out of a line)
    for r in rs:
        keys += [k for k in r if k != "broker" and k not in keys]
    m = {}
    out = []
    for k in keys:
        vals = [num(r.get(k, "")) for r in rs]
        vals = [v for v in vals if v is not None]
        if k == "scenario":
            out.append(f"{k}={rs[0][k]}")
            continue
        if not vals:
            continue
        v = statistics.median(vals)
        m[k] = v
        out.append(f"{k}={v:.3f}".rstrip("0").rstrip(".") if v != int(v) else f"{k}={int(v)}")
    rates = sorted(num(r["msgs_per_s"]) or 0 for r in rs)
    out.append(f"range={int(rates[0])}-{int(rates[-1])} runs={len(rs)} broker={broker}")
    med[broker] = m
    print(" ".join(out))

a, b = med.get("mosquitto"), med.get("ferrocore")
if a and b:
    parts = []
    for k in ("msgs_per_s", "p50_ms", "p99_ms", "loss_pct", "broker_cpu_pct", "rss_kb_per_conn"):
        if k in a and k in b:
            parts.append(f"{k}={b[k] / a[k]:.2f}" if a[k] else f"{k}=n/a")
    print("ratio ferrocore/mosquitto: " + " ".join(parts))
EOF
