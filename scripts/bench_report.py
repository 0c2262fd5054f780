#!/usr/bin/env python3
"""Sets benchmark results of one run side by side.

Usage:
  bench_report.py CRITERION_DIR OPENSSL_SPEED_OUTPUT
      the crypto benchmark beside `openssl speed rsa2048` (make bench-crypto)
  bench_report.py --c-api CRITERION_DIR BENCH_VERIFY_OUTPUT
      verification through the C API beside the core's `crypto/verify` (make bench-c)
"""
import json
import re
import sys
from pathlib import Path


def rate(criterion_dir: Path, name: str, group: str = "crypto") -> float:
    estimates = criterion_dir / group / name / "new" / "estimates.json"
    mean_ns = json.loads(estimates.read_text())["mean"]["point_estimate"]
    return 1e9 / mean_ns


def openssl_rates(text: str) -> tuple[float, float]:
    # "rsa 2048 bits 0.000934s 0.000027s   1070.4  37301.0"
    for line in text.splitlines():
        m = re.match(r"\s*rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            return float(m.group(1)), float(m.group(2))
    sys.exit("no 'rsa 2048 bits' line in the openssl speed output")


def openssl_ecdh_p384(text: str) -> float:
    # " 384 bits ecdh (nistp384)   0.0008s   1226.0"
    for line in text.splitlines():
        m = re.match(r"\s*384 bits ecdh \(nistp384\)\s+\S+\s+([\d.]+)", line)
        if m:
            return float(m.group(1))
    sys.exit("no '384 bits ecdh (nistp384)' line in the openssl speed output")


def voprf_rows(criterion_dir: Path, speed_text: str) -> None:
    ecdh_speed = openssl_ecdh_p384(speed_text)
    ecdh = rate(criterion_dir, "openssl_ecdh_p384")
    print()
    print("| VOPRF operation, one core | P-384 (0x0001) ops/s | ristretto255 (0x0005) ops/s |")
    print("|---|---:|---:|")
    for label, op in [
        ("issue (blind evaluate + DLEQ proof)", "issue"),
        ("client request (blind)", "client_request"),
        ("client finalize (proof verify + unblind)", "client_finalize"),
        ("redeem check (PRF with the private key)", "verify"),
    ]:
        p384, r255 = rate(criterion_dir, f"voprf_p384_{op}"), rate(criterion_dir, f"voprf_r255_{op}")
        print(f"| {label} | {p384:,.0f} | {r255:,.0f} |")
    print(f"| OpenSSL P-384 ECDH in-process (one scalar multiplication) | {ecdh:,.0f} | |")
    print(f"| openssl speed ecdhp384 | {ecdh_speed:,.0f} | |")


def batch_rows(criterion_dir: Path) -> None:
    """Per-token cost of amortized batches (one proof per batch) against single tokens."""
    print()
    print("| amortized batch, one core | tokens | issue µs/token | saved vs single | finalize µs/token | saved vs single |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, label in [("p384", "P-384 (0x0001)"), ("r255", "ristretto255 (0x0005)")]:
        single_issue = 1e6 / rate(criterion_dir, f"voprf_{name}_issue")
        single_finalize = 1e6 / rate(criterion_dir, f"voprf_{name}_client_finalize")
        print(f"| {label}, single | 1 | {single_issue:,.1f} | | {single_finalize:,.1f} | |")
        for n in (10, 100):
            issue = 1e6 / rate(criterion_dir, f"voprf_{name}_amortized_issue_{n}", "batch") / n
            final = 1e6 / rate(criterion_dir, f"voprf_{name}_amortized_finalize_{n}", "batch") / n
            print(
                f"| {label}, batch | {n} | {issue:,.1f} | {1 - issue / single_issue:.0%} "
                f"| {final:,.1f} | {1 - final / single_finalize:.0%} |"
            )


def c_api(criterion_dir: Path, bench_output: str) -> None:
    # "  pp_verifier_verify (no challenge):        48712 verifies/s  (20.53 us each)"
    m = re.search(r"pp_verifier_verify \(no challenge\):\s+([\d.]+) verifies/s", bench_output)
    if not m:
        sys.exit("no 'pp_verifier_verify (no challenge)' line in the bench_verify output")
    through_c, core = float(m.group(1)), rate(criterion_dir, "verify")
    print("| token verify, one core | verifies/s | |")
    print("|---|---:|---|")
    print(f"| core `Verifier::verify` (criterion `crypto/verify`) | {core:,.0f} | |")
    print(f"| C API `pp_verifier_verify` | {through_c:,.0f} | {through_c / core:.0%} of the core (target >= 90%) |")
    if through_c / core < 0.9:
        print("\nbelow target: the C API verifies more than 10% slower than the core")


def main() -> None:
    if sys.argv[1] == "--c-api":
        c_api(Path(sys.argv[2]), Path(sys.argv[3]).read_text())
        return
    criterion_dir, speed_file = Path(sys.argv[1]), Path(sys.argv[2])
    ossl_sign, ossl_verify = openssl_rates(speed_file.read_text())
    sign, verify = rate(criterion_dir, "issuer_sign"), rate(criterion_dir, "verify")
    near_sign, near_verify = rate(criterion_dir, "openssl_sign"), rate(criterion_dir, "openssl_verify")
    rows = [
        (
            "issuer sign (OpenSSL raw + re-encryption check)",
            sign,
            f"{sign / ossl_sign:.0%} of `openssl speed` sign, {sign / near_sign:.0%} of OpenSSL sign in-process (target >= 90%)",
        ),
        (
            "token verify (aws-lc PSS-SHA384)",
            verify,
            f"{verify / ossl_verify:.0%} of `openssl speed` verify, {verify / near_verify:.0%} of OpenSSL verify in-process (target >= 70%)",
        ),
        ("OpenSSL RSA-2048 sign in-process (PKCS#1 v1.5, SHA-256)", near_sign, ""),
        ("OpenSSL RSA-2048 verify in-process (PKCS#1 v1.5, SHA-256)", near_verify, ""),
        (
            "PSS-SHA384 verify, aws-lc (the backend verify uses)",
            rate(criterion_dir, "pss_verify"),
            f"{rate(criterion_dir, 'pss_verify') / rate(criterion_dir, 'openssl_pss_verify'):.2f} x OpenSSL's, same token",
        ),
        ("PSS-SHA384 verify, OpenSSL", rate(criterion_dir, "openssl_pss_verify"), ""),
        (
            "RSA-2048 PSS-SHA384 sign, aws-lc (stands for its private operation)",
            rate(criterion_dir, "aws_lc_pss_sign"),
            f"{rate(criterion_dir, 'aws_lc_pss_sign') / sign:.2f} x the issuer's sign (OpenSSL raw)",
        ),
        ("client request (blind)", rate(criterion_dir, "client_request"), ""),
        ("client finalize (unblind + verify)", rate(criterion_dir, "client_finalize"), ""),
        ("reference blind_sign (blind-rsa-signatures)", rate(criterion_dir, "reference_blind_sign"), ""),
        ("reference verify (blind-rsa-signatures)", rate(criterion_dir, "reference_verify"), ""),
        ("openssl speed rsa2048 sign", ossl_sign, ""),
        ("openssl speed rsa2048 verify", ossl_verify, ""),
    ]
    print("| operation, one core | ops/s | |")
    print("|---|---:|---|")
    for name, ops, note in rows:
        print(f"| {name} | {ops:,.0f} | {note} |")
    voprf_rows(criterion_dir, speed_file.read_text())
    batch_rows(criterion_dir)
    failed = min(sign / ossl_sign, sign / near_sign) < 0.9 or min(verify / ossl_verify, verify / near_verify) < 0.7
    if failed:
        print("\nbelow target (see the ratios above)")


if __name__ == "__main__":
    main()
