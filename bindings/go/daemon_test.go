package privacypass

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// daemonPath is the privacypassd binary: $PRIVACYPASSD, by default the release build.
func daemonPath() string {
	if path := os.Getenv("PRIVACYPASSD"); path != "" {
		return path
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "privacypass", "target", "release", "privacypassd")
}

// startDaemon runs privacypassd on 127.0.0.1 with a fresh data directory (and the serve options
// args) and answers its base URL; the daemon is killed when the test ends.
func startDaemon(t *testing.T, args ...string) string {
	t.Helper()
	path := daemonPath()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("privacypassd not found (set PRIVACYPASSD): %v", err)
	}
	cmd := exec.Command(path, append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--generate-key-if-missing", "true"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	mustNoErr(t, err)
	mustNoErr(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("privacypassd stderr:\n%s", stderr.String())
		}
	})
	lines := make(chan string, 1)
	go func() {
		reader := bufio.NewReader(stdout)
		line, _ := reader.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, reader) // keep the pipe drained
	}()
	const prefix = "privacypassd listening on "
	select {
	case line := <-lines:
		if !strings.HasPrefix(line, prefix+"http://127.0.0.1:") {
			t.Fatalf("privacypassd's first line: %q", line)
		}
		return strings.TrimSpace(strings.TrimPrefix(line, prefix))
	case <-time.After(30 * time.Second):
		t.Fatal("privacypassd did not start within 30 s")
	}
	return ""
}

func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

type rpcAnswer struct {
	status int
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func rpc(t *testing.T, base, method string, params map[string]string) rpcAnswer {
	t.Helper()
	body, err := json.Marshal(map[string]interface{}{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	mustNoErr(t, err)
	resp, err := http.Post(base+"/rpc", "application/json", bytes.NewReader(body))
	mustNoErr(t, err)
	defer resp.Body.Close()
	var answer rpcAnswer
	mustNoErr(t, json.NewDecoder(resp.Body).Decode(&answer))
	answer.status = resp.StatusCode
	return answer
}

// The whole protocol against a running privacypassd: the key from its directory, tokens issued
// over HTTP (RFC 9578 /token-request and JSON-RPC issue) and finalized here, one redeemed
// in-process, one through the daemon, and its double spend refused by the daemon.
func TestDaemonCycle(t *testing.T) {
	base := startDaemon(t)

	// The issuer directory: the key, a verifier from the whole directory.
	resp, err := http.Get(base + "/.well-known/private-token-issuer-directory")
	mustNoErr(t, err)
	directory, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	mustNoErr(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("directory: HTTP %d: %s", resp.StatusCode, directory)
	}
	var dir struct {
		TokenKeys []struct {
			TokenType int    `json:"token-type"`
			TokenKey  string `json:"token-key"`
		} `json:"token-keys"`
	}
	mustNoErr(t, json.Unmarshal(directory, &dir))
	if len(dir.TokenKeys) == 0 || dir.TokenKeys[0].TokenType != TokenTypeBlindRSA {
		t.Fatalf("directory: %s", directory)
	}
	key, err := decodeB64URL(dir.TokenKeys[0].TokenKey)
	mustNoErr(t, err)
	keyID := sha256.Sum256(key)

	context := make([]byte, RedemptionContextLen)
	_, err = rand.Read(context)
	mustNoErr(t, err)
	challenge, err := Challenge{IssuerName: "127.0.0.1", RedemptionContext: context}.Encode()
	mustNoErr(t, err)
	client, err := NewClient(key)
	mustNoErr(t, err)
	defer client.Close()

	// 1. RFC 9578 native issuance: POST /token-request.
	pending, err := client.Request(challenge)
	mustNoErr(t, err)
	defer pending.Close()
	resp, err = http.Post(base+"/token-request", "application/private-token-request", bytes.NewReader(pending.Request()))
	mustNoErr(t, err)
	response, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	mustNoErr(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/token-request: HTTP %d: %s", resp.StatusCode, response)
	}
	nativeToken, err := pending.Finalize(response)
	mustNoErr(t, err)

	// 2. JSON-RPC issue: POST /rpc.
	pending2, err := client.Request(challenge)
	mustNoErr(t, err)
	defer pending2.Close()
	answer := rpc(t, base, "issue", map[string]string{
		"blinded-token": base64.RawURLEncoding.EncodeToString(pending2.Request()),
		"key-id":        hex.EncodeToString(keyID[:]),
	})
	if answer.Error != nil || answer.status != http.StatusOK {
		t.Fatalf("issue: HTTP %d, %+v", answer.status, answer.Error)
	}
	var result struct {
		BlindSig string `json:"blind-sig"`
	}
	mustNoErr(t, json.Unmarshal(answer.Result, &result))
	blindSig, err := decodeB64URL(result.BlindSig)
	mustNoErr(t, err)
	rpcToken, err := pending2.Finalize(blindSig)
	mustNoErr(t, err)

	// Both verify here, against the key and against the directory.
	fromDir, err := NewVerifierFromDirectory(directory)
	mustNoErr(t, err)
	defer fromDir.Close()
	verifier, err := NewVerifier(key)
	mustNoErr(t, err)
	defer verifier.Close()
	for _, token := range [][]byte{nativeToken, rpcToken} {
		mustNoErr(t, fromDir.Verify(token, challenge))
		mustNoErr(t, verifier.Verify(token, challenge))
	}

	// 3. The first token redeemed in-process, once.
	redeemer, err := NewRedeemer(verifier, "memory:")
	mustNoErr(t, err)
	defer redeemer.Close()
	mustNoErr(t, redeemer.Redeem(nativeToken, challenge))
	wantErr(t, redeemer.Redeem(nativeToken, challenge), ErrAlreadySpent)

	// 4. The second through the daemon: success, then refused as spent (-32021, HTTP 403).
	params := map[string]string{
		"token":     base64.RawURLEncoding.EncodeToString(rpcToken),
		"challenge": base64.RawURLEncoding.EncodeToString(challenge),
	}
	answer = rpc(t, base, "redeem", params)
	if answer.status != http.StatusOK || answer.Error != nil || string(answer.Result) != `"success"` {
		t.Fatalf("redeem: HTTP %d, result %s, error %+v", answer.status, answer.Result, answer.Error)
	}
	answer = rpc(t, base, "redeem", map[string]string{"token": params["token"]})
	if answer.Error == nil || answer.Error.Code != int(CodeAlreadySpent) || answer.status != CodeAlreadySpent.HTTPStatus() ||
		answer.status != http.StatusForbidden {
		t.Fatalf("second redeem: HTTP %d, result %s, error %+v", answer.status, answer.Result, answer.Error)
	}
}

// Types 1 and 5 against a running privacypassd: keys made by `privacypassd keys generate --type
// voprf-p384|voprf-ristretto255`, their token-key from the issuer directory, tokens issued
// through POST /token-request and JSON-RPC issue and finalized here (the DLEQ proof checked), one
// redeemed in-process with the daemon's own key file (NewIssuerFromPEM, NewRedeemerFromIssuer),
// one through the daemon's redeem, then refused there as spent.
func TestDaemonVoprf(t *testing.T) {
	keysDir := t.TempDir()
	for _, keyType := range []string{"voprf-p384", "voprf-ristretto255"} {
		out, err := exec.Command(daemonPath(), "keys", "generate", "--type", keyType, "--keys-dir", keysDir).CombinedOutput()
		if err != nil {
			t.Fatalf("privacypassd keys generate --type %s: %v\n%s", keyType, err, out)
		}
	}
	base := startDaemon(t, "--keys-dir", keysDir)

	resp, err := http.Get(base + "/.well-known/private-token-issuer-directory")
	mustNoErr(t, err)
	directory, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	mustNoErr(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("directory: HTTP %d: %s", resp.StatusCode, directory)
	}
	var dir struct {
		TokenKeys []struct {
			TokenType uint16 `json:"token-type"`
			TokenKey  string `json:"token-key"`
		} `json:"token-keys"`
	}
	mustNoErr(t, json.Unmarshal(directory, &dir))
	keys := map[uint16][]byte{}
	for _, entry := range dir.TokenKeys {
		key, err := decodeB64URL(entry.TokenKey)
		mustNoErr(t, err)
		keys[entry.TokenType] = key
	}
	if len(keys) != 2 || keys[TokenTypeVoprfP384] == nil || keys[TokenTypeVoprfRistretto255] == nil {
		t.Fatalf("directory: %s", directory)
	}

	for _, typ := range voprfTypes {
		typ := typ
		t.Run(typ.name, func(t *testing.T) {
			key := keys[typ.tokenType]
			keyID := sha256.Sum256(key)
			client, err := NewVoprfClient(typ.tokenType, key)
			mustNoErr(t, err)
			defer client.Close()
			context := make([]byte, RedemptionContextLen)
			_, err = rand.Read(context)
			mustNoErr(t, err)
			challenge, err := Challenge{TokenType: typ.tokenType, IssuerName: "127.0.0.1", RedemptionContext: context}.Encode()
			mustNoErr(t, err)

			// 1. RFC 9578 native issuance: POST /token-request.
			pending, err := client.Request(challenge)
			mustNoErr(t, err)
			defer pending.Close()
			resp, err := http.Post(base+"/token-request", "application/private-token-request", bytes.NewReader(pending.Request()))
			mustNoErr(t, err)
			response, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			mustNoErr(t, err)
			if resp.StatusCode != http.StatusOK || len(response) != typ.tokenResponseLen {
				t.Fatalf("/token-request: HTTP %d: %x", resp.StatusCode, response)
			}
			nativeToken, err := pending.Finalize(response)
			mustNoErr(t, err)

			// 2. JSON-RPC issue: POST /rpc.
			pending2, err := client.Request(challenge)
			mustNoErr(t, err)
			defer pending2.Close()
			answer := rpc(t, base, "issue", map[string]string{
				"blinded-token": base64.RawURLEncoding.EncodeToString(pending2.Request()),
				"key-id":        hex.EncodeToString(keyID[:]),
			})
			if answer.Error != nil || answer.status != http.StatusOK {
				t.Fatalf("issue: HTTP %d, %+v", answer.status, answer.Error)
			}
			var result struct {
				BlindSig string `json:"blind-sig"`
			}
			mustNoErr(t, json.Unmarshal(answer.Result, &result))
			rpcResponse, err := decodeB64URL(result.BlindSig)
			mustNoErr(t, err)
			rpcToken, err := pending2.Finalize(rpcResponse)
			mustNoErr(t, err)

			// 3. The first token redeemed in-process with the daemon's key file, once; a verifier
			// of public keys cannot.
			keyFile, err := os.ReadFile(filepath.Join(keysDir, hex.EncodeToString(keyID[:])+".pem"))
			mustNoErr(t, err)
			issuer, err := NewIssuerFromPEM(keyFile)
			mustNoErr(t, err)
			defer issuer.Close()
			if issuer.TokenType() != typ.tokenType || !bytes.Equal(issuer.PublicKey(), key) {
				t.Fatalf("the key file's issuer: type %d, key %x; the directory's %x", issuer.TokenType(), issuer.PublicKey(), key)
			}
			redeemer, err := NewRedeemerFromIssuer(issuer, "memory:")
			mustNoErr(t, err)
			defer redeemer.Close()
			mustNoErr(t, redeemer.Redeem(nativeToken, challenge))
			wantErr(t, redeemer.Redeem(nativeToken, challenge), ErrAlreadySpent)
			rsa, err := NewVerifier(testIssuer(t).PublicKey())
			mustNoErr(t, err)
			defer rsa.Close()
			wantErr(t, rsa.Verify(rpcToken, challenge), ErrPrivateTokenType)

			// 4. The second through the daemon: success, then refused as spent (-32021, HTTP 403).
			params := map[string]string{
				"token":     base64.RawURLEncoding.EncodeToString(rpcToken),
				"challenge": base64.RawURLEncoding.EncodeToString(challenge),
			}
			answer = rpc(t, base, "redeem", params)
			if answer.status != http.StatusOK || answer.Error != nil || string(answer.Result) != `"success"` {
				t.Fatalf("redeem: HTTP %d, result %s, error %+v", answer.status, answer.Result, answer.Error)
			}
			answer = rpc(t, base, "redeem", map[string]string{"token": params["token"]})
			if answer.Error == nil || answer.Error.Code != int(CodeAlreadySpent) || answer.status != http.StatusForbidden {
				t.Fatalf("second redeem: HTTP %d, result %s, error %+v", answer.status, answer.Result, answer.Error)
			}
		})
	}
}
