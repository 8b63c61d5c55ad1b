# Shared by the bench scripts that run one `ferrocore serve` at a time (shadow.sh,
# custom_auth.sh); sourced once `repo` and `bin` are set.

say() { printf '%s\n' "$*" >&2; }

# Builds the release binary unless NO_BUILD=1 or FERROCORE_BIN names one; fails without it.
ensure_binary() {
    if [ "${NO_BUILD:-0}" != 1 ] && [ -z "${FERROCORE_BIN:-}" ]; then
        (cd "$repo" && cargo build --release -q -p ferrocore)
    fi
    [ -x "$bin" ] || { say "no ferrocore binary at $bin"; exit 1; }
}

# Makes the scratch directory $work (/tmp/<prefix>.XXXXXX) and arranges that at exit the
# server this script started ($serve_pid) ends and $work is removed (kept with KEEP=1).
start_scratch() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    serve_pid=""
    trap on_exit EXIT
    trap 'exit 130' INT TERM
}

# Ends the server this script started (and only it), waiting up to 10 s before SIGKILL.
end_serve() {
    [ -n "$serve_pid" ] || return 0
    kill -TERM "$serve_pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$serve_pid" 2>/dev/null && [ "$waited" -lt 100 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -KILL "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
}

on_exit() {
    end_serve
    if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
