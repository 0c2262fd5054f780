// Command example runs the whole Privacy Pass protocol in one process with the Go binding of
// libprivacypass: an issuer, an origin's challenge, a client's token, and a redeemer that
// accepts the token once and refuses it the second time.
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
	fmt.Fprintln(w, "libprivacypass", privacypass.Version())

	// Issuer: a fresh RSA-2048 key (a service loads its PEM with NewIssuerFromPEM).
	issuer, err := privacypass.GenerateIssuer()
	if err != nil {
		return err
	}
	defer issuer.Close()
	key := issuer.PublicKey()

	// Origin: a TokenChallenge, sent in WWW-Authenticate.
	challenge, err := privacypass.Challenge{IssuerName: "issuer.example"}.Encode()
	if err != nil {
		return err
	}
	www, err := privacypass.WWWAuthenticate(challenge, key)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "WWW-Authenticate:", www)

	// Client: a blinded TokenRequest; the issuer signs it; the client finalizes the token.
	client, err := privacypass.NewClient(key)
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
	authorization, err := privacypass.EncodeAuthorization(token)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Authorization: %.40s...\n", authorization)

	// Origin: verify the Authorization header and spend the token, exactly once.
	verifier, err := privacypass.NewVerifier(key)
	if err != nil {
		return err
	}
	defer verifier.Close()
	redeemer, err := privacypass.NewRedeemer(verifier, "memory:")
	if err != nil {
		return err
	}
	defer redeemer.Close()
	if err := redeemer.RedeemAuthorization(authorization, challenge); err != nil {
		return err
	}
	fmt.Fprintln(w, "first redeem: ok")

	err = redeemer.RedeemAuthorization(authorization, challenge)
	var ppErr *privacypass.Error
	if !errors.Is(err, privacypass.ErrAlreadySpent) || !errors.As(err, &ppErr) {
		return fmt.Errorf("second redeem: %v", err)
	}
	fmt.Fprintf(w, "second redeem: %v (JSON-RPC %d, HTTP %d)\n",
		ppErr.Code(), ppErr.Code().JSONRPCCode(), ppErr.HTTPStatus())
	return nil
}
