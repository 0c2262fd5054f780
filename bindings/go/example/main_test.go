package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

const marker = "<!-- example/main.go -->"

// The README's example is this program, byte for byte.
func TestReadmeExampleIsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	program, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	at := strings.Index(text, marker+"\n```go\n")
	if at < 0 {
		t.Fatalf("README.md has no %q line followed by a ```go block", marker)
	}
	block := text[at+len(marker)+len("\n```go\n"):]
	end := strings.Index(block, "\n```\n")
	if end < 0 {
		t.Fatal("README.md's example block is not closed")
	}
	block = block[:end+1]
	if block != string(program) {
		t.Fatalf("README.md's example differs from example/main.go; copy main.go into the README.\nREADME block:\n%s", block)
	}
}

// The program runs and prints what the README shows.
func TestExampleRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^libprivacypass \d+\.\d+\.\d+
WWW-Authenticate: PrivateToken challenge="AAIADmlzc3Vlci5leGFtcGxlAAAA", token-key="[A-Za-z0-9_-]+=*"
Authorization: PrivateToken token="AA[A-Za-z0-9_-]{18}\.\.\.
first redeem: ok
second redeem: token already spent \(JSON-RPC -32021, HTTP 403\)
$`)
	if !want.Match(out.Bytes()) {
		t.Fatalf("output:\n%s", out.String())
	}
	t.Logf("output:\n%s", out.String())
}
