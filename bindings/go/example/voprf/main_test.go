package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const marker = "<!-- example/voprf/main.go -->"

// The binding's README shows this program, byte for byte, after the marker line.
func TestReadmeExampleIsThisProgram(t *testing.T) {
	program, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	if strings.Count(text, marker) != 1 {
		t.Fatalf("README.md has %q %d times, want once", marker, strings.Count(text, marker))
	}
	at := strings.Index(text, marker+"\n```go\n")
	if at < 0 {
		t.Fatalf("README.md has no %q line followed by a ```go block", marker)
	}
	block := text[at+len(marker)+len("\n```go\n"):]
	end := strings.Index(block, "\n```\n")
	if end < 0 {
		t.Fatal("README.md: the VOPRF example block is not closed")
	}
	if block[:end+1] != string(program) {
		t.Errorf("README.md's VOPRF example differs from example/voprf/main.go; copy main.go into it.\nREADME block:\n%s", block[:end+1])
	}
}

// The program runs and prints what the README shows.
func TestExampleRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	const want = `token type 1: token-key of 49 bytes, token of 146 bytes
  first redeem: ok
  second redeem: privacypass: pp_redeemer_redeem: token already spent (-32021)
token type 5: token-key of 32 bytes, token of 162 bytes
  first redeem: ok
  second redeem: privacypass: pp_redeemer_redeem: token already spent (-32021)
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "\n```\n"+want+"```\n") {
		t.Error("README.md does not show the VOPRF example's output")
	}
}
