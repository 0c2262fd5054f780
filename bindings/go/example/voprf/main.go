// Command voprf runs the Privacy Pass protocol for the privately verifiable token types 0x0001
// (VOPRF P-384) and 0x0005 (VOPRF ristretto255) with the Go binding of libprivacypass: only the
// issuer's private key verifies these tokens, so the origin redeems them with a redeemer made
// from the issuer.
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"privacypass.example/privacypass"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(w io.Writer) error {
	for _, tokenType := range []uint16{privacypass.TokenTypeVoprfP384, privacypass.TokenTypeVoprfRistretto255} {
		if err := cycle(w, tokenType); err != nil {
			return err
		}
	}
	return nil
}

func cycle(w io.Writer, tokenType uint16) error {
	// Issuer: a fresh VOPRF key (a service loads privacypassd's key file with NewIssuerFromPEM,
	// or the raw scalar with NewIssuerFromScalar).
	issuer, err := privacypass.GenerateVoprfIssuer(tokenType)
	if err != nil {
		return err
	}
	defer issuer.Close()
	key := issuer.PublicKey() // the token-key of the challenge and of the issuer directory

	// Origin: a TokenChallenge of the issuer's token type.
	challenge, err := privacypass.Challenge{TokenType: issuer.TokenType(), IssuerName: "issuer.example"}.Encode()
	if err != nil {
		return err
	}

	// Client: a blinded TokenRequest; the issuer evaluates it and proves it (DLEQ); the client
	// checks the proof and finalizes the token.
	client, err := privacypass.NewVoprfClient(issuer.TokenType(), key)
	if err != nil {
		return err
	}
	defer client.Close()
	pending, err := client.Request(challenge)
	if err != nil {
		return err
	}
	defer pending.Close()
	response, err := issuer.Issue(pending.Request())
	if err != nil {
		return err
	}
	token, err := pending.Finalize(response)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "token type %d: token-key of %d bytes, token of %d bytes\n", issuer.TokenType(), len(key), len(token))

	// Origin: redeem with the issuer's key, exactly once (a Verifier of public keys answers
	// ErrPrivateTokenType for these tokens).
	redeemer, err := privacypass.NewRedeemerFromIssuer(issuer, "memory:")
	if err != nil {
		return err
	}
	defer redeemer.Close()
	if err := redeemer.Redeem(token, challenge); err != nil {
		return err
	}
	fmt.Fprintln(w, "  first redeem: ok")

	err = redeemer.Redeem(token, challenge)
	if !errors.Is(err, privacypass.ErrAlreadySpent) {
		return fmt.Errorf("second redeem: %v", err)
	}
	fmt.Fprintln(w, "  second redeem:", err)
	return nil
}
