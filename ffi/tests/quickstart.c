/* quickstart.c: the whole Privacy Pass protocol in one process with libprivacypass.
 * cc -std=c99 quickstart.c $(pkg-config --cflags --libs privacypass) -o quickstart */
#include <stdio.h>
#include <string.h>

#include <privacypass.h>

#define TRY(call)                                                      \
    do {                                                               \
        pp_result rc_ = (call);                                        \
        if (rc_ != PP_OK) {                                            \
            fprintf(stderr, "%s: %s\n", #call, pp_result_str(rc_));    \
            return 1;                                                  \
        }                                                              \
    } while (0)

int main(void) {
    pp_issuer *issuer = NULL;
    pp_client *client = NULL;
    pp_pending_token *pending = NULL;
    pp_verifier *verifier = NULL;
    pp_redeemer *redeemer = NULL;
    uint8_t key[PP_PUBLIC_KEY_LEN], challenge[256], request[PP_TOKEN_REQUEST_LEN];
    uint8_t response[PP_TOKEN_RESPONSE_LEN], token[PP_TOKEN_LEN];
    char header[1024];
    size_t key_len, challenge_len, len, header_len;
    const char *issuer_name = "issuer.example";
    pp_result again;

    printf("libprivacypass %s\n", pp_version());

    /* Issuer: a fresh RSA-2048 key (a service loads its PEM with pp_issuer_new_from_pem). */
    TRY(pp_issuer_generate(&issuer));
    TRY(pp_issuer_public_key(issuer, key, sizeof key, &key_len));

    /* Origin: a TokenChallenge, sent in WWW-Authenticate. */
    TRY(pp_challenge_encode(PP_TOKEN_TYPE_BLIND_RSA, issuer_name, strlen(issuer_name), NULL, 0,
                            NULL, 0, challenge, sizeof challenge, &challenge_len));
    TRY(pp_challenge_www_authenticate(challenge, challenge_len, key, key_len, NULL, header,
                                      sizeof header, &header_len));
    printf("WWW-Authenticate: %.*s\n", (int)header_len, header);

    /* Client: a blinded TokenRequest; the issuer signs it; the client finalizes the Token. */
    TRY(pp_client_new(key, key_len, &client));
    TRY(pp_client_request(client, challenge, challenge_len, &pending));
    TRY(pp_pending_token_request(pending, request, sizeof request, &len));
    TRY(pp_issuer_issue(issuer, request, len, response, sizeof response, &len));
    TRY(pp_pending_token_finalize(pending, response, len, token, sizeof token, &len));
    TRY(pp_authorization_encode(token, len, header, sizeof header, &header_len));
    printf("Authorization: %.40s...\n", header);

    /* Origin: verify the Authorization header and spend the token, exactly once. */
    TRY(pp_verifier_new_from_spki(key, key_len, &verifier));
    TRY(pp_redeemer_new(verifier, "memory:", &redeemer));
    TRY(pp_redeemer_redeem_authorization(redeemer, header, header_len, challenge, challenge_len));
    printf("first redeem: ok\n");
    again = pp_redeemer_redeem_authorization(redeemer, header, header_len, challenge,
                                             challenge_len);
    printf("second redeem: %s (JSON-RPC %d, HTTP %d)\n", pp_result_str(again),
           pp_result_jsonrpc_code(again), pp_result_http_status(again));

    pp_redeemer_free(redeemer);
    pp_verifier_free(verifier);
    pp_pending_token_free(pending);
    pp_client_free(client);
    pp_issuer_free(issuer);
    return again == PP_ERR_ALREADY_SPENT ? 0 : 1;
}
