#!/usr/bin/env python3
"""Prints the crypto benchmark beside `openssl speed rsa2048` from the same run.

Usage: bench_report.py CRITERION_DIR OPENSSL_SPEED_OUTPUT
"""
import json
import re
import sys
from pathlib import Path


def rate(criterion_dir: Path, name: str) -> float:
    estimates = criterion_dir / "crypto" / name / "new" / "estimates.json"
    mean_ns = json.loads(estimates.read_text())["mean"]["point_estimate"]
    return 1e9 / mean_ns


def openssl_rates(text: str) -> tuple[float, float]:
    # "rsa 2048 bits 0.000934s 0.000027s   1070.4  37301.0"
    for line in text.splitlines():
        m = re.match(r"\s*rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            return float(m.group(1)), float(m.group(2))
    sys.exit("no 'rsa 2048 bits' line in the openssl speed output")


def main() -> None:
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
    failed = min(sign / ossl_sign, sign / near_sign) < 0.9 or min(verify / ossl_verify, verify / near_verify) < 0.7
    if failed:
        print("\nbelow target (see the ratios above)")


if __name__ == "__main__":
    main()
