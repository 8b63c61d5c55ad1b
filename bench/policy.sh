#!/usr/bin/env bash
# What IoT policy enforcement costs in broker throughput (issue 4: "broker throughput with
# policies vs an allow-all listener, as a ratio"; target: the checks cost under 5 %).
#
#   bench/policy.sh                          # the three default scenarios, 3 rounds
#   bench/policy.sh 'p2p --qos 1 --pairs 100 --inflight 16'    # one or more scenarios, quoted
#
# One `ferrocore serve` with two plain-TCP anonymous listeners on 127.0.0.1:0: `allow-all` (no
# policy: every action allowed, nothing evaluated) and `policy` (anonymous_policy =
# bench/policies/device.json, a least-privilege device policy of 12 statements with
# ${iot:ClientId}, an IP condition and four Deny statements, so every Connect / Publish /
# Subscribe / Receive walks real statements). Ports come from <data-dir>/listeners.json. Each
# scenario runs against each listener, a fresh broker per run, alternating which goes first
# (round 1: allow-all, policy; round 2: policy, allow-all; ...). Default scenarios: fan-in QoS 0
# 50 → 1, p2p QoS 1 100 pairs 16 in flight, fan-out QoS 0 1 → 500 (bench/README.md rows 1-3).
# A --label in a scenario names its row (default: fanin-qos0, p2p-qos1, fanout-qos0, ...).
# Prints every run's machine line (listener=...), then per scenario the median delivered msg/s
# of each listener, the ratio policy / allow-all of the medians, each round's ratio and their
# median, and broker CPU µs per delivered message.
#
# Environment:
#   ROUNDS=3              rounds (each runs every scenario against both listeners)
#   BENCH_ARGS            extra `ferrocore bench` arguments for every run (e.g. "--duration 5s")
#   POLICY=file           the policy document [default: bench/policies/device.json]
#   FERROCORE_BIN=path    binary to use [default: $CARGO_TARGET_DIR or ./target, release]
#   NO_BUILD=1            do not run `cargo build --release -p ferrocore` first
#   FERROCORE_SERVE_ARGS  extra arguments for `ferrocore serve`
#   KEEP=1                keep the scratch directory (logs, config, per-run outputs)
set -euo pipefail

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
if [ $# -gt 0 ]; then
    scenarios=("$@")
else
    scenarios=(
        "fan-in --publishers 50 --qos 0"
        "p2p --qos 1 --pairs 100 --inflight 16"
        "fan-out --subscribers 500"
    )
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-3}
bin=${FERROCORE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ferrocore}
policy=$(realpath "${POLICY:-$repo/bench/policies/device.json}")
read -r -a bench_args <<<"${BENCH_ARGS:-}"

for s in "${scenarios[@]}"; do
    case " $s " in
        *" --port"* | *" --host"* | *" --broker-pid"* | *" --tls "*)
            echo "policy.sh sets --port, --host and --broker-pid itself (plain TCP only): $s" >&2
            exit 2
            ;;
    esac
done

log() { printf '%s\n' "$*" >&2; }

if [ "${NO_BUILD:-0}" != 1 ] && [ -z "${FERROCORE_BIN:-}" ]; then
    (cd "$repo" && cargo build --release -q -p ferrocore)
fi
[ -x "$bin" ] || { log "no ferrocore binary at $bin"; exit 1; }
[ -r "$policy" ] || { log "no policy document at $policy"; exit 1; }

work=$(mktemp -d /tmp/ferrocore-policy-bench.XXXXXX)
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

cat >"$work/ferrocore.toml" <<EOF
# Two anonymous plain-TCP listeners, identical but for the policy.
[[listener]]
name = "allow-all"
address = "127.0.0.1:0"
transport = "mqtt"
anonymous = true

[[listener]]
name = "policy"
address = "127.0.0.1:0"
transport = "mqtt"
anonymous = true
anonymous_policy = "$policy"
EOF

run_n=0
start_ferrocore() { # listener name; sets broker_pid, port
    run_n=$((run_n + 1))
    local dd=$work/data-$run_n
    # shellcheck disable=SC2086
    "$bin" serve --config "$work/ferrocore.toml" --data-dir "$dd" --log-level warn \
        --listen-mqtt off --listen-mqtts off --listen-https off \
        ${FERROCORE_SERVE_ARGS:-} 2>>"$work/ferrocore.log" >&2 &
    broker_pid=$!
    for _ in $(seq 200); do
        [ -s "$dd/listeners.json" ] && break
        kill -0 "$broker_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$dd/listeners.json" ] || { log "ferrocore did not start:"; tail -5 "$work/ferrocore.log" >&2; exit 1; }
    port=$(python3 -c 'import json,sys
ls = json.load(open(sys.argv[1]))["listeners"]
print([l["address"].rsplit(":", 1)[1] for l in ls if l["name"] == sys.argv[2]][0])' "$dd/listeners.json" "$1")
    wait_port "$port" "$broker_pid" || { log "ferrocore is not accepting on $port"; exit 1; }
}

# --- the policy is really enforced on one listener and not on the other ------------------------
# A subscription outside bench/* must be refused (SUBACK 0x80: the bench's setup fails) by the
# policy listener and granted by the allow-all one.
probe() { # listener; sets probe_rc
    start_ferrocore "$1"
    probe_rc=0
    "$bin" bench p2p --port "$port" --pairs 1 --topic-prefix not-granted --warmup 0s \
        --duration 0.2s --drain 0s --json >"$work/probe-$1.out" 2>&1 || probe_rc=$?
    stop_broker
}
probe policy
policy_rc=$probe_rc
probe allow-all
if [ "$policy_rc" = 0 ] || [ "$probe_rc" != 0 ]; then
    log "the listeners do not enforce what they should (policy: refuse not-granted/#; allow-all: grant it):"
    tail -3 "$work"/probe-*.out >&2
    exit 1
fi

label_of() { # scenario spec -> its --label, else e.g. fanin-qos0
    if [[ " $1 " =~ \ --label\ ([^ ]+) ]]; then
        echo "${BASH_REMATCH[1]}"
        return
    fi
    local name=${1%% *}
    case $name in
        fan-in) name=fanin ;;
        fan-out) name=fanout ;;
    esac
    local qos=0
    [[ " $1 " =~ \ --qos\ ([0-9]) ]] && qos=${BASH_REMATCH[1]}
    echo "$name-qos$qos"
}

run_one() { # scenario spec, listener, round
    local spec=$1 listener=$2 label out
    label=$(label_of "$spec")
    out=$work/$label-$listener-$3.out
    start_ferrocore "$listener"
    sleep 0.5
    local -a sargs
    read -r -a sargs <<<"$spec"
    [[ " $spec " == *" --label "* ]] || sargs+=(--label "$label")
    if ! timeout 1800 "$bin" bench "${sargs[@]}" --host 127.0.0.1 --port "$port" \
        --broker-pid "$broker_pid" "${bench_args[@]}" >"$out" 2>"$out.err"; then
        log "bench $spec against $listener failed (round $3):"
        tail -15 "$out.err" "$out" >&2 || true
    fi
    stop_broker
    local line
    line=$(grep '^scenario=' "$out" | tail -1 || true)
    if [ -n "$line" ]; then
        echo "$line listener=$listener round=$3" | tee -a "$work/lines" >&2
    fi
    sed -n '/^  errors/,$p' "$out" | grep -v '^scenario=' | grep -v '^  errors *0$' >&2 || true
    sleep 1
}

log "policy enforcement cost: $bin, policy $policy, $rounds rounds, load average $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$work/lines"
for r in $(seq "$rounds"); do
    for spec in "${scenarios[@]}"; do
        if [ $((r % 2)) = 1 ]; then order=(allow-all policy); else order=(policy allow-all); fi
        for l in "${order[@]}"; do run_one "$spec" "$l" "$r"; done
    done
done
log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- medians and ratios --------------------------------------------------------------------------
python3 - "$work/lines" <<'EOF'
import statistics, sys

runs = {}  # (scenario, listener) -> [kv]
order = []
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    key = kv["scenario"]
    if key not in order:
        order.append(key)
    runs.setdefault((key, kv["listener"]), []).append(kv)

def f(kv, k):
    try:
        return float(kv[k])
    except (KeyError, ValueError):
        return None

def med(rs, k):
    v = [x for x in (f(r, k) for r in rs) if x is not None]
    return statistics.median(v) if v else None

def cpu_us(kv):  # broker CPU µs per delivered message (100 % = one core)
    c, m = f(kv, "broker_cpu_pct"), f(kv, "msgs_per_s")
    return c / 100 * 1e6 / m if c is not None and m else None

print()
print("| scenario | allow-all msg/s (median [range]) | policy msg/s (median [range]) | ratio of medians | ratio per round | median ratio | broker CPU µs/msg allow-all → policy |")
print("|---|---|---|---|---|---|---|")
for sc in order:
    a, p = runs.get((sc, "allow-all"), []), runs.get((sc, "policy"), [])
    if not a or not p:
        print(f"| {sc} | {len(a)} runs | {len(p)} runs | | | | |")
        continue
    def cell(rs):
        v = sorted(f(r, "msgs_per_s") or 0 for r in rs)
        return f"{statistics.median(v):,.0f} [{v[0]/1e3:,.1f}k–{v[-1]/1e3:,.1f}k]"
    ma, mp = med(a, "msgs_per_s"), med(p, "msgs_per_s")
    by_round = {}
    for r in a + p:
        by_round.setdefault(r["round"], {})[r["listener"]] = f(r, "msgs_per_s")
    ratios = [d["policy"] / d["allow-all"] for _, d in sorted(by_round.items())
              if d.get("policy") and d.get("allow-all")]
    ca = statistics.median([x for x in map(cpu_us, a) if x is not None] or [0])
    cp = statistics.median([x for x in map(cpu_us, p) if x is not None] or [0])
    print(f"| {sc} | {cell(a)} | {cell(p)} | {mp / ma:.3f} | "
          f"{' '.join(f'{x:.3f}' for x in ratios)} | "
          f"{statistics.median(ratios):.3f} | {ca:.2f} → {cp:.2f} ({cp / ca if ca else 0:.3f}) |")
EOF
