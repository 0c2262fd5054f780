#!/usr/bin/env bash
# Interop test: the npm package @cloudflare/privacypass-ts against privacypassd.
#
#   1. privacypass-ts's Client gets tokens from our /token-request for the key our
#      directory lists, finalizes them, and our /rpc redeems them (once only).
#   2. privacypass-ts's own Issuer issues a token; its key, imported with
#      `privacypassd keys import` and picked up on SIGHUP, lets our /rpc redeem it.
#   3. as 1 for token type 0x0001 (VOPRF P-384): privacypass-ts's VOPRF Client gets
#      a token from our /token-request for our type-1 key, verifies the DLEQ proof,
#      and our /rpc redeems it (once only).
#   4. as 2 for type 0x0001: privacypass-ts's keyGen + VOPRF Issuer make a token;
#      the private scalar, imported with `keys import --type voprf-p384` and picked
#      up on SIGHUP, lets our /rpc redeem it (once only).
#   5. generic batches (draft-ietf-privacypass-batched-tokens -07): privacypass-ts's
#      genericBatched Client sends our /token-request a batch mixing types 2 and 1
#      (every key the directory lists by then, ours and the two imported), finalizes
#      every token, and our /rpc redeems each once only; a batch with entries for an
#      unknown key is 206 with those entries absent, one with only such entries 400.
#
# Usage: bash tests/interop/run.sh
#   PRIVACYPASSD  daemon binary (default: $HOME/.cache/privacypass/target/release/privacypassd)
#
# Needs the pinned npm packages in tests/interop/node_modules (`make deps`
# installs them), runs one daemon on 127.0.0.1 with a throw-away data dir, and ends
# with "interop: N passed, M failed" (exit 1 when M > 0 or nothing ran).
set -uo pipefail

# The daemon reads PRIVACYPASS_* settings from the environment; none may leak in.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^PRIVACYPASS_')

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PRIVACYPASSD="${PRIVACYPASSD:-$HOME/.cache/privacypass/target/release/privacypassd}"
STARTUP_TIMEOUT="${INTEROP_STARTUP_TIMEOUT:-60}" # seconds for the daemon to print its URL

passed=0
failed=0
tmp=""
daemon_pid=""

pass() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "not ok - $1"; }

finish() {
    echo "interop: $passed passed, $failed failed"
    if [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then exit 0; fi
    exit 1
}

cleanup() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$daemon_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    [ -n "$tmp" ] && rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "interrupted"; fail "run interrupted"; finish' INT TERM

show_daemon_log() {
    [ -n "$tmp" ] || return 0
    echo "# --- privacypassd stderr (last 30 lines) ---"
    tail -n 30 "$tmp/daemon.err" 2>/dev/null | sed 's/^/# /'
    echo "# --- privacypassd stdout (last 10 lines) ---"
    tail -n 10 "$tmp/daemon.out" 2>/dev/null | sed 's/^/# /'
}

# Runs one subcommand of privacypass-ts.mjs, echoing its output and adding its
# "ok - " / "not ok - " lines to the totals. A non-zero exit that reported no
# failed check counts as one failure.
run_node() {
    local out rc n_ok n_fail
    out="$(node "$here/privacypass-ts.mjs" "$@" 2>&1)"
    rc=$?
    printf '%s\n' "$out"
    n_ok=$(printf '%s\n' "$out" | grep -c '^ok - ')
    n_fail=$(printf '%s\n' "$out" | grep -c '^not ok - ')
    passed=$((passed + n_ok))
    failed=$((failed + n_fail))
    if [ "$rc" -ne 0 ] && [ "$n_fail" -eq 0 ]; then
        fail "privacypass-ts.mjs $1 exited with status $rc"
    fi
    return "$rc"
}

# --- prerequisites -----------------------------------------------------------

if ! command -v node >/dev/null; then
    fail "node is on PATH"
    finish
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    fail "node >= 20 (WebCrypto as globalThis.crypto); found $(node --version)"
    finish
fi

# The pinned npm packages are installed by `make deps` (mk/deps.mk: npm ci --prefix tests/interop).
if [ ! -d "$here/node_modules/@cloudflare/privacypass-ts" ]; then
    fail "npm packages installed in tests/interop/node_modules (make deps installs them)"
    finish
fi

if ! "$PRIVACYPASSD" --version >/dev/null 2>&1; then
    fail "privacypassd binary runs: $PRIVACYPASSD (set PRIVACYPASSD, or build it first)"
    finish
fi

# --- start the daemon ----------------------------------------------------------

tmp="$(mktemp -d "${TMPDIR:-/tmp}/privacypass-interop.XXXXXX")"
mkdir -p "$tmp/data" "$tmp/ts"
keys="$tmp/data/keys"

# Two issuing keys before the start: RSA-2048 (type 2) and VOPRF P-384 (type 1).
for key_type in blind-rsa-2048 voprf-p384; do
    if gen_out="$("$PRIVACYPASSD" keys generate --type "$key_type" --keys-dir "$keys" 2>&1)"; then
        pass "privacypassd keys generate --type $key_type"
        printf '%s\n' "$gen_out" | sed 's/^/# /'
    else
        fail "privacypassd keys generate --type $key_type"
        printf '%s\n' "$gen_out" | sed 's/^/# /'
        finish
    fi
done

"$PRIVACYPASSD" serve --listen 127.0.0.1:0 --data-dir "$tmp/data" --keys-dir "$keys" \
    >"$tmp/daemon.out" 2>"$tmp/daemon.err" &
daemon_pid=$!

url=""
deadline=$((SECONDS + STARTUP_TIMEOUT))
while [ -z "$url" ] && [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$daemon_pid" 2>/dev/null; then break; fi
    url="$(sed -n 's#^privacypassd listening on \(http://127\.0\.0\.1:[0-9][0-9]*\)/*$#\1#p' "$tmp/daemon.out" | head -n 1)"
    [ -n "$url" ] || sleep 0.1
done
if [ -z "$url" ]; then
    fail "privacypassd starts and prints 'privacypassd listening on http://127.0.0.1:PORT' within ${STARTUP_TIMEOUT}s"
    show_daemon_log
    finish
fi
pass "privacypassd listening on $url ($("$PRIVACYPASSD" --version 2>&1 | head -n 1))"

# --- scenario 1: privacypass-ts Client against our issuer and redeemer ---------

echo "# scenario 1: privacypass-ts Client -> privacypassd /token-request, redeem on /rpc"
run_node client "$url"

# --- scenario 2: a token from privacypass-ts's own Issuer ------------------------

echo "# scenario 2: privacypass-ts Issuer token, key imported with 'privacypassd keys import'"
if run_node ts-issue "$tmp/ts" "$keys"; then
    if import_out="$("$PRIVACYPASSD" keys import "$tmp/ts/ts-issuer.pem" --keys-dir "$keys" 2>&1)"; then
        pass "privacypassd keys import accepts privacypass-ts's PKCS#8 issuer key"
        printf '%s\n' "$import_out" | sed 's/^/# /'
        if kill -HUP "$daemon_pid" 2>/dev/null; then
            run_node redeem-ts "$url" "$tmp/ts"
        else
            fail "SIGHUP to privacypassd (pid $daemon_pid): daemon is gone"
        fi
    else
        fail "privacypassd keys import accepts privacypass-ts's PKCS#8 issuer key"
        printf '%s\n' "$import_out" | sed 's/^/# /'
    fi
fi

# --- scenario 3: type 0x0001, privacypass-ts VOPRF Client against our issuer -------

echo "# scenario 3: privacypass-ts VOPRF Client (type 0x0001) -> privacypassd /token-request, redeem on /rpc"
run_node voprf-client "$url"

# --- scenario 4: a type-1 token from privacypass-ts's own VOPRF Issuer -------------

echo "# scenario 4: privacypass-ts VOPRF Issuer token, scalar imported with 'privacypassd keys import --type voprf-p384'"
if run_node voprf-ts-issue "$tmp/ts" "$keys"; then
    if import_out="$("$PRIVACYPASSD" keys import --type voprf-p384 "$tmp/ts/ts-voprf-issuer.hex" --keys-dir "$keys" 2>&1)"; then
        pass "privacypassd keys import --type voprf-p384 accepts privacypass-ts's private scalar (hex)"
        printf '%s\n' "$import_out" | sed 's/^/# /'
        if kill -HUP "$daemon_pid" 2>/dev/null; then
            run_node redeem-ts-voprf "$url" "$tmp/ts"
        else
            fail "SIGHUP to privacypassd (pid $daemon_pid): daemon is gone"
        fi
    else
        fail "privacypassd keys import --type voprf-p384 accepts privacypass-ts's private scalar (hex)"
        printf '%s\n' "$import_out" | sed 's/^/# /'
    fi
fi

# --- scenario 5: generic batches of types 2 and 1 ----------------------------------

echo "# scenario 5: privacypass-ts genericBatched (types 0x0002 + 0x0001) -> privacypassd /token-request (generic batch), redeem on /rpc"
run_node generic-batch "$url"

if kill -0 "$daemon_pid" 2>/dev/null; then
    pass "privacypassd still running after all checks"
else
    fail "privacypassd still running after all checks"
fi

[ "$failed" -eq 0 ] || show_daemon_log
finish
