#!/usr/bin/env bash
# Custom-authentication connects per second (issue 6), each beside mTLS connects per second in
# the same run, on the same listener of the same server:
#
#   bench/custom_auth.sh                  # ~1 min: ROUNDS (3) × the modes below × CLIENTS (2000)
#
# Every round starts a fresh `ferrocore serve` (new temporary data directory; the built-in MQTT/TLS
# listener on 127.0.0.1:0, which takes both client certificates and custom authentication, and
# the HTTPS control plane on 127.0.0.1:0; with a jwt mode, the `jwt` built-in `bench-idp` declared
# in a config file: issuer http://127.0.0.1:<port>, allow_http, audience ferrocore-bench,
# default_policies bench-all), then sets it up through the AWS API (boto3 from .venv, with the
# credentials and aws-config files the server wrote into its data directory): one device
# certificate (CreateKeysAndCertificate, active) and one from a P-256 CSR
# (CreateCertificateFromCsr), both with the allow-all policy bench-all attached,
# the authorizer `bench-hook` (signing disabled, ACTIVE) whose function is the URL of the
# webhook that `ferrocore bench --custom-auth webhook` serves in its own process, and
# `bench-jwt` with function ferrocore:function/bench-idp. Then, against that server, one
# `ferrocore bench connect-storm --tls` per mode (the order reversed every other round):
#   mtls           every connection presents the device certificate (RSA-2048 key, as
#                  CreateKeysAndCertificate makes: the client signs with RSA in every handshake)
#   mtls-ec        the same with a P-256 device key (CreateCertificateFromCsr): cheaper for the
#                  client, which shares the 2 cores with the broker
#   webhook-cold   username bench?x-amz-customauthorizer-name=bench-hook, a password, client ids
#                  never seen before: every connect is an answer-cache miss, a webhook call
#   webhook-warm   the same, after an unmeasured pass that connects and disconnects the same
#                  client ids with the same credentials: every measured connect is a cache hit
#   jwt            username bench?x-amz-customauthorizer-name=bench-jwt, a token of its own
#                  (RS256, minted by the bench with one RSA-2048 key made here for the whole
#                  run; the bench serves the issuer's discovery document and JWKS) as password,
#                  new client ids: every connect verifies a token
#   jwt-warm       the same after a warm-up pass: answers from the cache
# Each connect is TCP + a full TLS handshake (the bench never resumes a TLS session) +
# CONNECT/CONNACK; the connections are held until the ramp ends, then sent DISCONNECT.
# Prints every run's summary and machine line, then a Markdown table: per mode the median over
# the rounds of connects/s, p50 / p99 connect latency, broker CPU (and per connect), load
# generator CPU, the function's requests in each round (webhook calls; issuer discovery/JWKS
# fetches) during the ramp and the warm-up pass, and the ratio to mTLS (median of the
# per-round ratios). The broker's answer cache holds 10,000 answers:
# keep CLIENTS × (cached modes) below that, or a cold run pays for evicting.
#
# Environment:
#   ROUNDS=3  CLIENTS=2000  CONCURRENCY=32   rounds, connects per run, connects in flight
#   MODES="mtls mtls-ec webhook-cold webhook-warm jwt jwt-warm"   the modes, in this order
#                                            (then reversed)
#   BENCH_ARGS                               extra `ferrocore bench` arguments for every run
#   FERROCORE_BIN=path   binary [default: $CARGO_TARGET_DIR or ./target, release]
#   NO_BUILD=1           do not run `cargo build --release -p ferrocore` first
#   FERROCORE_SERVE_ARGS extra arguments for `ferrocore serve`
#   KEEP=1               keep the scratch directory (server logs, per-run outputs)
set -euo pipefail

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,49p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-3}
clients=${CLIENTS:-2000}
concurrency=${CONCURRENCY:-32}
read -r -a modes <<<"${MODES:-mtls mtls-ec webhook-cold webhook-warm jwt jwt-warm}"
read -r -a bench_args <<<"${BENCH_ARGS:-}"
bin=${FERROCORE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/ferrocore}
python=$repo/.venv/bin/python

. "$repo/bench/lib.sh"

for m in "${modes[@]}"; do
    case $m in
        mtls | mtls-ec | webhook-cold | webhook-warm | jwt | jwt-warm) ;;
        *) say "unknown mode $m (mtls, mtls-ec, webhook-cold, webhook-warm, jwt, jwt-warm)"; exit 2 ;;
    esac
done
[ -x "$python" ] || { say "no $python: create the venv (scripts/test does)"; exit 1; }
ensure_binary

start_scratch ferrocore-custom-auth-bench

# Free loopback ports for the bench's webhook and issuer (the authorizer's URL and the jwt
# function's issuer must name them before the bench starts; the bench binds them with
# SO_REUSEADDR, one bench at a time).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
webhook_port=$(free_port)
issuer_port=$(free_port)
: >"$work/ferrocore.toml"
case " ${modes[*]} " in
    *" jwt"*)
        # One issuer key for every jwt bench of the run (the server refetches the JWKS for a new
        # key at most every 10 s).
        (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
            -out "$work/issuer.key" 2>/dev/null)
        cat >"$work/ferrocore.toml" <<EOF
[[authorizer_function]]
name = "bench-idp"
kind = "jwt"
issuer = "http://127.0.0.1:$issuer_port"
audience = ["ferrocore-bench"]
allow_http = true
default_policies = ["bench-all"]
EOF
        ;;
esac

# `ports DATA_DIR PID`: waits (10 s) for listeners.json and the listeners, prints
# "<mqtts port> <https port>"; fails unless the MQTT/TLS listener takes custom authentication.
# `setup DATA_DIR OUT_DIR WEBHOOK_URL`: the device certificates (OUT_DIR/device.pem, .key and
# device-ec.pem, .key; keys mode 0600) with an allow-all policy, and the authorizers.
helper() {
    "$python" - "$@" <<'EOF'
import json, os, socket, sys, time

def ports(data_dir, pid):
    deadline = time.time() + 10
    while time.time() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            sys.exit("ferrocore exited")
        try:
            listeners = {l["name"]: l for l in json.load(open(f"{data_dir}/listeners.json"))["listeners"]}
            mqtts, https = listeners["mqtts"], listeners["https"]
            pair = [int(l["address"].rsplit(":", 1)[1]) for l in (mqtts, https)]
            for port in pair:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
            continue
        if not mqtts.get("custom_auth"):
            sys.exit("the built-in MQTT/TLS listener does not take custom authentication (--compat aws?)")
        print(*pair)
        return
    sys.exit("ferrocore did not open its listeners within 10 s")

def setup(data_dir, out_dir, webhook_url):
    import configparser
    import boto3, botocore.session
    core = botocore.session.Session()
    core.set_config_variable("credentials_file", f"{data_dir}/credentials")
    core.set_config_variable("config_file", f"{data_dir}/aws-config")
    config = configparser.ConfigParser()
    config.read(f"{data_dir}/aws-config")
    core.set_config_variable("ca_bundle", config["default"]["ca_bundle"])
    iot = boto3.session.Session(botocore_session=core).client("iot")
    import subprocess

    def write(name, pem):
        fd = os.open(f"{out_dir}/{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pem)

    rsa = iot.create_keys_and_certificate(setAsActive=True)
    write("device.pem", rsa["certificatePem"])
    write("device.key", rsa["keyPair"]["PrivateKey"])
    ec_key = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                            check=True, capture_output=True, text=True).stdout
    write("device-ec.key", ec_key)
    csr = subprocess.run(["openssl", "req", "-new", "-key", f"{out_dir}/device-ec.key", "-subj", "/CN=bench-ec"],
                         check=True, capture_output=True, text=True).stdout
    ec = iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=True)
    write("device-ec.pem", ec["certificatePem"])
    allow_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
    iot.create_policy(policyName="bench-all", policyDocument=json.dumps(allow_all))
    for cert in (rsa, ec):
        iot.attach_policy(policyName="bench-all", target=cert["certificateArn"])
    iot.create_authorizer(authorizerName="bench-hook", authorizerFunctionArn=webhook_url,
                          signingDisabled=True, status="ACTIVE")
    iot.create_authorizer(authorizerName="bench-jwt", authorizerFunctionArn="ferrocore:function/bench-idp",
                          signingDisabled=True, status="ACTIVE")

{"ports": ports, "setup": setup}[sys.argv[1]](*sys.argv[2:])
EOF
}

: >"$work/lines"
runs=0
round_of_modes() { # round
    local round=$1 data=$work/data-$1 ports mqtts_port
    mkdir -p "$work/round-$round"
    # shellcheck disable=SC2086
    "$bin" serve --config "$work/ferrocore.toml" --data-dir "$data" --log-level warn --listen-mqtt off \
        --listen-mqtts 127.0.0.1:0 --listen-https 127.0.0.1:0 ${FERROCORE_SERVE_ARGS:-} \
        2>>"$work/ferrocore.log" >&2 &
    serve_pid=$!
    if ! ports=$(helper ports "$data" "$serve_pid"); then
        say "ferrocore did not start:"
        tail -5 "$work/ferrocore.log" >&2
        exit 1
    fi
    mqtts_port=${ports% *}
    helper setup "$data" "$work/round-$round" "http://127.0.0.1:$webhook_port/"
    local -a order=("${modes[@]}")
    if [ $((round % 2)) = 0 ]; then
        local i
        order=()
        for ((i = ${#modes[@]} - 1; i >= 0; i--)); do order+=("${modes[i]}"); done
    fi
    local mode out
    for mode in "${order[@]}"; do
        local -a margs=()
        case $mode in
            mtls) margs=(--cert-file "$work/round-$round/device.pem" --key-file "$work/round-$round/device.key") ;;
            mtls-ec) margs=(--cert-file "$work/round-$round/device-ec.pem" --key-file "$work/round-$round/device-ec.key") ;;
            webhook-*) margs=(--custom-auth webhook --auth-server "127.0.0.1:$webhook_port" --authorizer bench-hook) ;;
            jwt*) margs=(--custom-auth jwt --auth-server "127.0.0.1:$issuer_port" --authorizer bench-jwt
                --jwt-key-file "$work/issuer.key") ;;
        esac
        [[ $mode != *-warm ]] || margs+=(--warm-up-pass)
        runs=$((runs + 1))
        out=$work/$mode-$round.out
        if ! timeout 600 "$bin" bench connect-storm --tls --ca-file "$data/root-ca.pem" \
            --host 127.0.0.1 --port "$mqtts_port" --broker-pid "$serve_pid" \
            --clients "$clients" --connect-concurrency "$concurrency" --label "$mode" \
            "${margs[@]}" "${bench_args[@]}" >"$out" 2>"$out.err"; then
            say "bench $mode failed (round $round):"
            tail -15 "$out.err" "$out" >&2 || true
        fi
        sed -n '/^ferrocore bench/,/^  errors/p' "$out" >&2
        local line
        line=$(grep '^scenario=' "$out" | tail -1 || true)
        [ -z "$line" ] || echo "$line round=$round" | tee -a "$work/lines"
        sleep 0.5
    done
    end_serve
}

say "custom-auth bench: $bin at $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)'), $rounds round(s) × ${modes[*]}, $clients connects, $concurrency in flight"
say "load at the start: $(uptime)"
for r in $(seq "$rounds"); do round_of_modes "$r"; done
say "load at the end: $(uptime)"

python3 - "$work/lines" <<'EOF'
import statistics, sys

runs = {}  # mode -> {round: fields}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    runs.setdefault(kv["scenario"], {})[kv["round"]] = kv

def med(values, fmt):
    values = [v for v in values if v is not None]
    return fmt.format(statistics.median(values)) if values else "—"

def field(r, k):
    return float(r[k]) if k in r else None

base = runs.get("mtls", {})
print()
print("| mode | connects/s [range] | ratio to mTLS | p50 / p99 ms | broker CPU % | broker CPU µs per connect | load gen CPU % | function requests per round: ramp (+ warm-up pass) | failed |")
print("|---|---|---|---|---|---|---|---|---|")
for mode, by_round in runs.items():
    rs = list(by_round.values())
    rates = sorted(float(r["msgs_per_s"]) for r in rs)
    spread = f" [{rates[0]:,.0f}–{rates[-1]:,.0f}]" if len(rates) > 1 else ""
    ratios = [float(r["msgs_per_s"]) / float(base[k]["msgs_per_s"])
              for k, r in by_round.items() if k in base and float(base[k]["msgs_per_s"]) > 0]
    cpu_us = [field(r, "broker_cpu_pct") / 100 * 1e6 / float(r["msgs_per_s"]) for r in rs
              if field(r, "broker_cpu_pct") is not None and float(r["msgs_per_s"]) > 0]
    # Requests the bench's function answered, each round: during the ramp; during the warm-up pass.
    requests = ", ".join(r["auth_requests"] + (f" (+{r['warmup_auth_requests']})" if "warmup_auth_requests" in r else "")
                         for r in rs if "auth_requests" in r) or "—"
    print(f"| {mode} | {statistics.median(rates):,.0f}{spread} | {med(ratios, '{:.2f}')} | "
          f"{med([field(r, 'p50_ms') for r in rs], '{:.2f}')} / {med([field(r, 'p99_ms') for r in rs], '{:.2f}')} | "
          f"{med([field(r, 'broker_cpu_pct') for r in rs], '{:.0f}')} | {med(cpu_us, '{:.0f}')} | "
          f"{med([field(r, 'loadgen_cpu_pct') for r in rs], '{:.0f}')} | {requests} | "
          f"{sum(int(r.get('failed', 0)) for r in rs)} |")
EOF
