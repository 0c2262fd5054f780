package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

const marker = "<!-- example/main.go -->"

// The READMEs that show the example: the binding's own and the repository's ("## Go and Python").
var readmes = []string{"../README.md", "../../../README.md"}

// readmeExample is the ```go block that follows the marker line in a README.
func readmeExample(t *testing.T, path string) string {
	t.Helper()
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	at := strings.Index(text, marker+"\n```go\n")
	if at < 0 {
		t.Fatalf("%s has no %q line followed by a ```go block", path, marker)
	}
	if strings.Count(text, marker) != 1 {
		t.Fatalf("%s has %q more than once", path, marker)
	}
	block := text[at+len(marker)+len("\n```go\n"):]
	end := strings.Index(block, "\n```\n")
	if end < 0 {
		t.Fatalf("%s: the example block is not closed", path)
	}
	return block[:end+1]
}

// Both READMEs' example is this program, byte for byte.
func TestReadmeExampleIsThisProgram(t *testing.T) {
	program, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range readmes {
		if block := readmeExample(t, path); block != string(program) {
			t.Errorf("%s's example differs from example/main.go; copy main.go into it.\nREADME block:\n%s", path, block)
		}
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
