"""The README example, extracted from both READMEs that show it, required identical, and run
exactly as written; and the binding README's VOPRF and batch examples, run too."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import README, REPO_ROOT, run_script

# The binding's README and the repository's (its "## Go and Python" section).
READMES = [README, REPO_ROOT / "README.md"]


def example_in(readme: Path) -> str:
    text = readme.read_text(encoding="utf-8")
    assert text.count("<!-- example.py -->") == 1, f"{readme}: one <!-- example.py --> block"
    match = re.search(r"^<!-- example\.py -->\n```python\n(.*?)^```$", text, re.S | re.M)
    assert match, f"{readme} has no <!-- example.py --> line followed by a ```python block"
    return match.group(1)


def readme_example() -> str:
    examples = [example_in(readme) for readme in READMES]
    assert examples[1] == examples[0], f"{READMES[1]}'s example differs from {READMES[0]}'s"
    return examples[0]


def test_both_readmes_show_the_same_example() -> None:
    example = readme_example()
    assert example.startswith("import privacypass as pp\n") and example.endswith("\n")


def test_readme_example_runs(tmp_path: Path) -> None:
    result = run_script(tmp_path, "example.py", readme_example())
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4, lines
    assert lines[0].startswith('WWW-Authenticate: PrivateToken challenge="AAIADmlzc3Vlci5leGFtcGxlAAAA", token-key="MIIB')
    assert re.fullmatch(r'Authorization: PrivateToken token="AA[IJKL][A-Za-z0-9_-]{17}\.\.\.', lines[1]), lines[1]
    assert lines[2] == "first redeem: ok"
    assert lines[3] == "second redeem: token already spent (JSON-RPC -32021, HTTP 403)"


def test_readme_output_block_matches_the_example() -> None:
    text = README.read_text(encoding="utf-8")
    shown = re.search(r"^```text\n(.*?)^```$", text, re.S | re.M)
    assert shown
    lines = shown.group(1).splitlines()
    assert lines[2:] == ["first redeem: ok",
                         "second redeem: token already spent (JSON-RPC -32021, HTTP 403)"]


# The VOPRF example: in this README only.
VOPRF_MARKER = "<!-- example_voprf.py -->"
VOPRF_OUTPUT = ["first redeem: ok", "second redeem: token already spent (JSON-RPC -32021)"]


def voprf_example() -> str:
    text = README.read_text(encoding="utf-8")
    assert text.count(VOPRF_MARKER) == 1, f"{README}: one {VOPRF_MARKER} block"
    match = re.search(r"^<!-- example_voprf\.py -->\n```python\n(.*?)^```$", text, re.S | re.M)
    assert match, f"{README} has no {VOPRF_MARKER} line followed by a ```python block"
    return match.group(1)


def test_readme_voprf_example_runs(tmp_path: Path) -> None:
    example = voprf_example()
    assert example.startswith("import privacypass as pp\n")
    assert "Client.voprf" in example and "Redeemer.from_issuer" in example
    result = run_script(tmp_path, "example_voprf.py", example)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, lines
    # A type 5 token: its first two bytes, 0x0005, begin "AA" then one of U, V, W, X in base64url.
    assert re.fullmatch(r'Authorization: PrivateToken token="AA[UVWX][A-Za-z0-9_-]{17}\.\.\.', lines[0]), lines[0]
    assert lines[1:] == VOPRF_OUTPUT


def test_readme_voprf_output_block_matches_the_example() -> None:
    text = README.read_text(encoding="utf-8")
    after = text[text.index(VOPRF_MARKER):]
    shown = re.search(r"^```text\n(.*?)^```$", after, re.S | re.M)
    assert shown
    lines = shown.group(1).splitlines()
    assert re.fullmatch(r'Authorization: PrivateToken token="AA[UVWX][A-Za-z0-9_-]{17}\.\.\.', lines[0])
    assert lines[1:] == VOPRF_OUTPUT


# The batch example: in this README only.
BATCH_MARKER = "<!-- example_batch.py -->"


def test_readme_batch_example_runs(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    assert text.count(BATCH_MARKER) == 1, f"{README}: one {BATCH_MARKER} block"
    match = re.search(r"^<!-- example_batch\.py -->\n```python\n(.*?)^```$", text, re.S | re.M)
    assert match, f"{README} has no {BATCH_MARKER} line followed by a ```python block"
    example = match.group(1)
    assert "request_amortized" in example and "PendingGenericBatch" in example
    result = run_script(tmp_path, "example_batch.py", example)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["13 tokens redeemed"]
