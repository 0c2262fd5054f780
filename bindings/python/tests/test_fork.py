"""Redeemers across os.fork(): a memory: redeemer made before the fork refuses every redeem in
the child (its copy of the spends would accept each token once more) and keeps working in the
parent. Run in a fresh interpreter, so that no thread of the test run is alive at the fork."""

from __future__ import annotations

from pathlib import Path

from conftest import run_script

SCRIPT = '''
import os
import privacypass as pp

issuer = pp.Issuer.generate()
challenge = pp.encode_challenge("issuer.example")


def token():
    with pp.Client(issuer.public_key) as client, client.request(challenge) as pending:
        return pending.finalize(issuer.issue(pending.token_request))


def outcome(call):
    try:
        call()
        return "ok"
    except pp.PrivacyPassError as err:
        return err.c_name


spent, fresh = token(), token()
verifier = pp.Verifier.from_spki(issuer.public_key)
redeemer = pp.Redeemer(verifier, "memory:")
redeemer.redeem(spent, challenge)
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    seen = [outcome(lambda: redeemer.redeem(spent, challenge)),
            outcome(lambda: redeemer.redeem(fresh, challenge)),
            outcome(lambda: verifier.verify(fresh, challenge))]
    with pp.Redeemer(verifier, "memory:") as own:
        seen += [outcome(lambda: own.redeem(fresh, challenge)),
                 outcome(lambda: own.redeem(fresh, challenge))]
    os.write(write, " ".join(seen).encode())
    os._exit(0)
os.close(write)
child = b""
while True:
    chunk = os.read(read, 4096)
    if not chunk:
        break
    child += chunk
_, status = os.waitpid(pid, 0)
print("child status:", status)
print("child:", child.decode())
print("parent:", outcome(lambda: redeemer.redeem(spent, challenge)),
      outcome(lambda: redeemer.redeem(fresh, challenge)),
      outcome(lambda: redeemer.redeem(fresh, challenge)))
'''


def test_memory_redeemer_refuses_in_a_forked_child(tmp_path: Path) -> None:
    result = run_script(tmp_path, "fork.py", SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "child status: 0",
        # the parent's redeemer: refused, spent or not; verifying and a redeemer of its own work
        "child: PP_ERR_STORE_UNAVAILABLE PP_ERR_STORE_UNAVAILABLE ok ok PP_ERR_ALREADY_SPENT",
        # nothing the child did reached the parent's spends
        "parent: PP_ERR_ALREADY_SPENT ok PP_ERR_ALREADY_SPENT",
    ], result.stdout + result.stderr
