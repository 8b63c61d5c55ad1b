#!/usr/bin/env bash
# Device shadows on this machine (issue 5): durable shadow updates per second and the latency
# from a `desired` update to the device's `update/delta`. No peer broker has shadows, so the
# figures are absolute, not ratios.
#
#   bench/shadow.sh                                  # the default scenarios, both durabilities
#   bench/shadow.sh 'shadow-update --things 1000 --qos 1'   # one or more scenarios, quoted
#
# For every durability in DURABILITIES and every scenario, one run: a fresh `ferrocore serve`
# (new temporary data directory, so the SQLite file starts empty) with `--durability <d>`, one
# anonymous plain-TCP listener on 127.0.0.1:0 (no policy: every action allowed) and the metrics
# listener on 127.0.0.1:0, ports read from <data-dir>/listeners.json; `ferrocore bench
# <scenario> --broker-pid ...` against it; the store's counters from /metrics before and after
# (ferrocore_store_ops_committed_total, ferrocore_store_group_commits_total), so each run also
# says how many shadow writes shared a group commit. Default scenarios, 100 things, QoS 1 (as
# the AWS IoT Device SDKs publish and subscribe), the bench's default phases (2 s warm-up, 10 s
# window, 1 s drain):
#   update-if1     shadow-update, 1 update in flight per thing
#   update-if10    shadow-update, 10 in flight per thing (AWS's per-connection maximum)
#   update-named   shadow-update on a named shadow, 1 in flight
#   delta-if1      shadow-delta, 1 desired update in flight per thing
#   delta-1k       shadow-delta at a fixed 1,000 updates/s in all (latency at a set load)
# Prints every run's machine line (with durability=, ops_per_commit=, commits_per_s=), then a
# Markdown table of the medians per scenario and durability.
#
# Environment:
#   ROUNDS=1                       runs of every scenario under every durability
#   DURABILITIES="process fsync"   the --durability levels to measure
#   BENCH_ARGS                     extra `ferrocore bench` arguments for every run
#   FERROCORE_BIN=path             binary to use [default: $CARGO_TARGET_DIR or ./target, release]
#   NO_BUILD=1                     do not run `cargo build --release -p ferrocore` first
#   FERROCORE_SERVE_ARGS           extra arguments for `ferrocore serve`
#   KEEP=1                         keep the scratch directory (logs, config, per-run outputs)
set -euo pipefail

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
if [ $# -gt 0 ]; then
    scenarios=("$@")
else
    scenarios=(
        "shadow-update --things 100 --qos 1 --label update-if1"
        "shadow-update --things 100 --qos 1 --inflight 10 --label update-if10"
        "shadow-update --things 100 --qos 1 --shadow-name bench --label update-named"
        "shadow-delta --things 100 --qos 1 --label delta-if1"
        "shadow-delta --things 100 --qos 1 --inflight 10 --rate 1000 --label delta-1k"
    )
fi
for s in "${scenarios[@]}"; do
    case " $s " in
        " shadow-update "* | " shadow-delta "*) ;;
        *)
            echo "not a shadow scenario: $s" >&2
            exit 2
            ;;
    esac
    case " $s " in
        *" --port"* | *" --host"* | *" --broker-pid"* | *" --tls "*)
            echo "shadow.sh sets --port, --host and --broker-pid itself (plain TCP only): $s" >&2
            exit 2
            ;;
    esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-1}
read -r -a durabilities <<<"${DURABILITIES:-process fsync}"
read -r -a bench_args <<<"${BENCH_ARGS:-}"
bin=${FERROCORE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ferrocore}

. "$repo/bench/lib.sh"

ensure_binary

start_scratch ferrocore-shadow-bench

cat >"$work/ferrocore.toml" <<EOF
# One anonymous plain-TCP listener without a policy: every action allowed.
[[listener]]
name = "shadow-bench"
address = "127.0.0.1:0"
transport = "mqtt"
anonymous = true
EOF

# python3 helper: `ports DATA_DIR PID` waits (10 s) for listeners.json and for both listeners
# to accept, prints "<mqtt port> <metrics port>"; `store METRICS_PORT` prints "<ops> <commits>".
helper() {
    python3 - "$@" <<'EOF'
import json, socket, sys, time, urllib.request

def ports(data_dir, pid):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat"):
                pass
        except OSError:
            sys.exit("ferrocore exited")
        try:
            listeners = json.load(open(f"{data_dir}/listeners.json"))["listeners"]
            found = {l["name"]: int(l["address"].rsplit(":", 1)[1]) for l in listeners}
            pair = (found["shadow-bench"], found["metrics"])
            for port in pair:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
            print(*pair)
            return
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    sys.exit("ferrocore did not open its listeners within 10 s")

def store(metrics_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("ferrocore_store_ops_committed_total "):
            values["ops"] = line.split()[1]
        elif line.startswith('ferrocore_store_group_commits_total{result="committed"} '):
            values["commits"] = line.split()[1]
    print(values.get("ops", "nan"), values.get("commits", "nan"))

{"ports": ports, "store": store}[sys.argv[1]](*sys.argv[2:])
EOF
}

label_of() { # scenario spec -> its --label, else the scenario name
    if [[ " $1 " =~ \ --label\ ([^ ]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo "${1%% *}"; fi
}

runs=0
measure() { # scenario spec, durability, round
    local spec=$1 durability=$2 round=$3 label out data
    label=$(label_of "$spec")
    runs=$((runs + 1))
    data=$work/data-$runs
    out=$work/$label-$durability-$round.out
    # shellcheck disable=SC2086
    "$bin" serve --config "$work/ferrocore.toml" --data-dir "$data" --log-level warn \
        --listen-mqtt off --listen-mqtts off --listen-https off --listen-metrics 127.0.0.1:0 \
        --durability "$durability" ${FERROCORE_SERVE_ARGS:-} 2>>"$work/ferrocore.log" >&2 &
    serve_pid=$!
    local ports
    if ! ports=$(helper ports "$data" "$serve_pid"); then
        say "ferrocore did not start:"
        tail -5 "$work/ferrocore.log" >&2
        exit 1
    fi
    local mqtt_port=${ports% *} metrics_port=${ports#* }
    local before after
    before=$(helper store "$metrics_port")
    local -a sargs
    read -r -a sargs <<<"$spec"
    if ! timeout 600 "$bin" bench "${sargs[@]}" --host 127.0.0.1 --port "$mqtt_port" \
        --broker-pid "$serve_pid" "${bench_args[@]}" >"$out" 2>"$out.err"; then
        say "bench $spec failed (durability $durability, round $round):"
        tail -15 "$out.err" "$out" >&2 || true
    fi
    after=$(helper store "$metrics_port")
    end_serve
    sed -n '/^ferrocore bench/,/^  errors/p' "$out" >&2
    local line
    line=$(grep '^scenario=' "$out" | tail -1 || true)
    [ -n "$line" ] || return 0
    # Every committed store operation of these runs is a shadow write (clean sessions never touch
    # the disk), so ops per commit is the number of updates sharing a group commit; the window's
    # commits per second follow from its accepted updates per second.
    python3 - "$line" "$durability" "$round" $before $after <<'EOF' | tee -a "$work/lines"
import sys
line, durability, rnd, ops0, commits0, ops1, commits1 = sys.argv[1:]
kv = dict(f.split("=", 1) for f in line.split())
ops, commits = float(ops1) - float(ops0), float(commits1) - float(commits0)
accepted = float(kv.get("accepted_per_s", kv["msgs_per_s"]))
extra = f" durability={durability} round={rnd}"
if commits > 0:
    per = ops / commits
    extra += f" ops_per_commit={per:.2f} commits_per_s={accepted / per:.0f}"
print(line + extra)
EOF
    sleep 1
}

say "shadow bench: $bin at $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)'), $rounds round(s), durabilities ${durabilities[*]}"
say "load at the start: $(uptime)"
: >"$work/lines"
for r in $(seq "$rounds"); do
    for d in "${durabilities[@]}"; do
        for spec in "${scenarios[@]}"; do measure "$spec" "$d" "$r"; done
    done
done
say "load at the end: $(uptime)"

python3 - "$work/lines" <<'EOF'
import statistics, sys

runs, order = {}, []
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    key = (kv["scenario"], kv["durability"])
    if key not in order:
        order.append(key)
    runs.setdefault(key, []).append(kv)

def med(rs, k, fmt="{:,.0f}"):
    v = [float(r[k]) for r in rs if k in r]
    return fmt.format(statistics.median(v)) if v else "—"

def spread(rs, k):
    v = sorted(float(r[k]) for r in rs if k in r)
    return f" [{v[0]:,.0f}–{v[-1]:,.0f}]" if len(v) > 1 else ""

def cpu_per_update(r):  # broker CPU µs per accepted update (100 % = one core)
    accepted = float(r.get("accepted_per_s", r["msgs_per_s"]))
    return float(r["broker_cpu_pct"]) / 100 * 1e6 / accepted if accepted and "broker_cpu_pct" in r else None

print()
print("| scenario | durability | accepted/s | deltas/s | latency p50 / p90 / p99 / max ms | rejected | timed out | ops per commit | commits/s | broker CPU % | CPU µs per update |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for key in order:
    rs = runs[key]
    accepted_key = "accepted_per_s" if "accepted_per_s" in rs[0] else "msgs_per_s"
    deltas = med(rs, "msgs_per_s") if accepted_key == "accepted_per_s" else "—"
    lat = " / ".join(med(rs, k, "{:.2f}") for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
    cpu = [c for c in map(cpu_per_update, rs) if c is not None]
    print(f"| {key[0]} | {key[1]} | {med(rs, accepted_key)}{spread(rs, accepted_key)} | {deltas} | {lat} | "
          f"{med(rs, 'rejected')} | {med(rs, 'timed_out')} | {med(rs, 'ops_per_commit', '{:.2f}')} | "
          f"{med(rs, 'commits_per_s')} | {med(rs, 'broker_cpu_pct')} | "
          f"{statistics.median(cpu) if cpu else float('nan'):.0f} |")
EOF
