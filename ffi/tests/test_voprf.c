/*
 * Token types 0x0001 (VOPRF P-384) and 0x0005 (VOPRF ristretto255) through the C API: the
 * RFC 9578 type 1 vectors (the issuer key from its scalar and from its key file, the client
 * reproducing the TokenRequest and the Token from the vector's nonce, blind and TokenResponse),
 * the whole protocol for both types (issue -> finalize -> redeem -> double spend), a verifier of
 * public keys refusing a private type with PP_ERR_PRIVATE_TOKEN_TYPE, and the error paths.
 *
 * Built by `make test-c` with -std=c99 -Wall -Wextra -Werror and ASan/UBSan, and again without
 * sanitizers under valgrind.
 *
 * usage: test_voprf VECTORS.json
 *   VECTORS.json  tests/vectors/rfc9578-type1-voprf-p384.json
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privacypass.h"
#include "testing.h"
#include "vectors.h"

#define BIG 512

/* Every type 1 vector: the key from skS (raw and as a key file) has the public key pkS, the
 * client reproduces token_request from nonce and blind, and finalizes the vector's
 * token_response into its token; that token redeems once with the issuer's private key. */
static void test_vectors(void) {
    int i;
    REQUIRE(vector_count >= 1);
    for (i = 0; i < vector_count; i++) {
        const vector *v = &vectors[i];
        const bytes *sk = get(v, "skS"), *pk = get(v, "pkS"), *challenge = get(v, "token_challenge");
        const bytes *nonce = get(v, "nonce"), *blind = get(v, "blind");
        const bytes *request = get(v, "token_request"), *response = get(v, "token_response");
        const bytes *token = get(v, "token");
        pp_issuer *issuer = NULL, *from_pem = NULL;
        pp_client *client = NULL;
        pp_pending_token *pending = NULL;
        pp_redeemer *redeemer = NULL;
        uint8_t out[BIG], out2[BIG];
        char pem[BIG], b64[128];
        size_t len = 0, len2 = 0;
        uint16_t token_type = 0;

        OK(pp_issuer_new_from_scalar(PP_TOKEN_TYPE_VOPRF_P384, sk->data, sk->len, &issuer));
        REQUIRE(issuer != NULL);
        OK(pp_issuer_token_type(issuer, &token_type));
        CHECK(token_type == PP_TOKEN_TYPE_VOPRF_P384);
        OK(pp_issuer_public_key(issuer, out, sizeof out, &len));
        CHECK(len == PP_VOPRF_P384_PUBLIC_KEY_LEN);
        CHECK(same(out, len, pk));

        /* The same key as the core's key file. */
        b64std(sk->data, sk->len, 1, b64);
        snprintf(pem, sizeof pem,
                 "-----BEGIN PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY-----\n%s\n"
                 "-----END PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY-----\n",
                 b64);
        OK(pp_issuer_new_from_pem(pem, strlen(pem), &from_pem));
        OK(pp_issuer_public_key(from_pem, out2, sizeof out2, &len2));
        CHECK(same(out2, len2, pk));
        OK(pp_issuer_token_key_id(issuer, out, sizeof out, &len));
        OK(pp_issuer_token_key_id(from_pem, out2, sizeof out2, &len2));
        CHECK(len == PP_TOKEN_KEY_ID_LEN && len2 == len && memcmp(out, out2, len) == 0);

        OK(pp_client_new_voprf(PP_TOKEN_TYPE_VOPRF_P384, pk->data, pk->len, &client));
        OK(pp_client_request_with_randomness(client, challenge->data, challenge->len, nonce->data,
                                             nonce->len, NULL, 0, blind->data, blind->len,
                                             &pending));
        OK(pp_pending_token_request(pending, out, sizeof out, &len));
        CHECK(len == PP_VOPRF_P384_TOKEN_REQUEST_LEN);
        CHECK(same(out, len, request));
        OK(pp_pending_token_finalize(pending, response->data, response->len, out, sizeof out,
                                     &len));
        CHECK(len == PP_VOPRF_P384_TOKEN_LEN);
        CHECK(same(out, len, token));

        /* The issuer answers the vector's request with a response (a fresh proof) that
         * finalizes into the same token: the VOPRF output is deterministic. */
        OK(pp_issuer_issue(from_pem, request->data, request->len, out, sizeof out, &len));
        CHECK(len == PP_VOPRF_P384_TOKEN_RESPONSE_LEN);
        OK(pp_pending_token_finalize(pending, out, len, out2, sizeof out2, &len2));
        CHECK(same(out2, len2, token));

        OK(pp_redeemer_new_from_issuer(issuer, "memory:", &redeemer));
        OK(pp_redeemer_redeem(redeemer, token->data, token->len, challenge->data, challenge->len));
        EXPECT_RC(pp_redeemer_redeem(redeemer, token->data, token->len, NULL, 0),
                  PP_ERR_ALREADY_SPENT);

        pp_redeemer_free(redeemer);
        pp_pending_token_free(pending);
        pp_client_free(client);
        pp_issuer_free(from_pem);
        pp_issuer_free(issuer);
    }
}

static size_t challenge_of(uint16_t token_type, uint8_t *out, size_t cap) {
    size_t len = 0;
    const char *name = "issuer.example";
    OK(pp_challenge_encode(token_type, name, strlen(name), NULL, 0, "origin.example",
                           strlen("origin.example"), out, cap, &len));
    return len;
}

/* issue -> finalize -> redeem -> double spend for one VOPRF type, with the sizes of the type. */
static void cycle(uint16_t token_type, size_t key_len, size_t request_len, size_t response_len,
                  size_t token_len) {
    pp_issuer *issuer = NULL;
    pp_client *client = NULL;
    pp_pending_token *pending = NULL;
    pp_redeemer *redeemer = NULL, *public_only = NULL;
    pp_verifier *verifier = NULL;
    pp_issuer *rsa = NULL;
    uint8_t key[BIG], challenge[256], other_challenge[256], request[BIG], response[BIG];
    uint8_t token[BIG], rsa_key[PP_PUBLIC_KEY_LEN];
    char header[1024];
    size_t len = 0, challenge_len, other_len, header_len = 0, request_len_got, response_len_got;

    OK(pp_issuer_generate_voprf(token_type, &issuer));
    REQUIRE(issuer != NULL);
    OK(pp_issuer_public_key(issuer, key, sizeof key, &len));
    CHECK(len == key_len);
    OK(pp_client_new_voprf(token_type, key, len, &client));
    challenge_len = challenge_of(token_type, challenge, sizeof challenge);
    OK(pp_client_request(client, challenge, challenge_len, &pending));
    OK(pp_pending_token_request(pending, request, sizeof request, &request_len_got));
    CHECK(request_len_got == request_len);
    CHECK(request[0] == 0 && request[1] == token_type);
    OK(pp_issuer_issue(issuer, request, request_len_got, response, sizeof response,
                       &response_len_got));
    CHECK(response_len_got == response_len);

    /* A response whose proof does not verify is refused before anything is unblinded. */
    response[response_len_got - 1] ^= 1;
    EXPECT_RC(pp_pending_token_finalize(pending, response, response_len_got, token, sizeof token,
                                        &len),
              PP_ERR_VERIFICATION_FAILED);
    response[response_len_got - 1] ^= 1;
    EXPECT_RC(pp_pending_token_finalize(pending, response, response_len_got - 1, token,
                                        sizeof token, &len),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_pending_token_finalize(pending, response, response_len_got, token, 1, &len),
              PP_ERR_BUFFER_TOO_SMALL);
    CHECK(len == token_len);
    OK(pp_pending_token_finalize(pending, response, response_len_got, token, sizeof token, &len));
    CHECK(len == token_len);

    OK(pp_redeemer_new_from_issuer(issuer, "memory:", &redeemer));
    /* Bound to another challenge: refused, and not spent. */
    other_len = challenge_of(token_type, other_challenge, sizeof other_challenge);
    other_challenge[other_len - 1] ^= 1;
    EXPECT_RC(pp_redeemer_redeem(redeemer, token, len, other_challenge, other_len),
              PP_ERR_VERIFICATION_FAILED);
    /* A token whose authenticator is off by one bit. */
    token[len - 1] ^= 1;
    EXPECT_RC(pp_redeemer_redeem(redeemer, token, len, NULL, 0), PP_ERR_VERIFICATION_FAILED);
    token[len - 1] ^= 1;
    OK(pp_authorization_encode(token, len, header, sizeof header, &header_len));
    OK(pp_redeemer_redeem_authorization(redeemer, header, header_len, challenge, challenge_len));
    EXPECT_RC(pp_redeemer_redeem(redeemer, token, len, challenge, challenge_len),
              PP_ERR_ALREADY_SPENT);
    EXPECT_RC(pp_redeemer_redeem_authorization(redeemer, header, header_len, NULL, 0),
              PP_ERR_ALREADY_SPENT);

    /* Public keys only (an RSA verifier, its redeemer): the distinct code, spent or not. */
    OK(pp_issuer_generate(&rsa));
    OK(pp_issuer_public_key(rsa, rsa_key, sizeof rsa_key, &len));
    OK(pp_verifier_new_from_spki(rsa_key, len, &verifier));
    OK(pp_redeemer_new(verifier, "memory:", &public_only));
    EXPECT_RC(pp_verifier_verify(verifier, token, token_len, NULL, 0), PP_ERR_PRIVATE_TOKEN_TYPE);
    EXPECT_RC(pp_verifier_verify_authorization(verifier, header, header_len, NULL, 0),
              PP_ERR_PRIVATE_TOKEN_TYPE);
    EXPECT_RC(pp_redeemer_redeem(public_only, token, token_len, NULL, 0),
              PP_ERR_PRIVATE_TOKEN_TYPE);
    EXPECT_RC(pp_redeemer_redeem_authorization(public_only, header, header_len, NULL, 0),
              PP_ERR_PRIVATE_TOKEN_TYPE);
    CHECK(strstr(pp_result_str(PP_ERR_PRIVATE_TOKEN_TYPE), "private") != NULL);
    CHECK(pp_result_jsonrpc_code(PP_ERR_PRIVATE_TOKEN_TYPE) == -32603);

    /* The RSA issuer does not serve a VOPRF request, nor the VOPRF issuer a type 2 one. */
    EXPECT_RC(pp_issuer_issue(rsa, request, request_len_got, response, sizeof response, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    {
        uint8_t rsa_challenge[256], rsa_request[PP_TOKEN_REQUEST_LEN];
        size_t rsa_challenge_len = challenge_of(PP_TOKEN_TYPE_BLIND_RSA, rsa_challenge,
                                                sizeof rsa_challenge);
        pp_client *rsa_client = NULL;
        pp_pending_token *rsa_pending = NULL;
        OK(pp_client_new(rsa_key, PP_PUBLIC_KEY_LEN, &rsa_client));
        OK(pp_client_request(rsa_client, rsa_challenge, rsa_challenge_len, &rsa_pending));
        OK(pp_pending_token_request(rsa_pending, rsa_request, sizeof rsa_request, &len));
        EXPECT_RC(pp_issuer_issue(issuer, rsa_request, len, response, sizeof response, &len),
                  PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
        /* A VOPRF client refuses a challenge of type 2, and the RSA one a VOPRF challenge. */
        EXPECT_RC(pp_client_request(client, rsa_challenge, rsa_challenge_len, &pending),
                  PP_ERR_UNSUPPORTED_TOKEN);
        EXPECT_RC(pp_client_request(rsa_client, challenge, challenge_len, &rsa_pending),
                  PP_ERR_UNSUPPORTED_TOKEN);
        pp_pending_token_free(rsa_pending);
        pp_client_free(rsa_client);
    }

    /* A VOPRF redeemer on a type 2 token: it holds no type 2 key, so the token does not verify. */
    {
        uint8_t rsa_token[PP_TOKEN_LEN];
        uint8_t rsa_challenge[256];
        size_t rsa_challenge_len = challenge_of(PP_TOKEN_TYPE_BLIND_RSA, rsa_challenge,
                                                sizeof rsa_challenge);
        make_token(rsa, rsa_challenge, rsa_challenge_len, rsa_token);
        EXPECT_RC(pp_redeemer_redeem(redeemer, rsa_token, sizeof rsa_token, NULL, 0),
                  PP_ERR_VERIFICATION_FAILED);
    }

    /* pp_issuer_issue_blinded: the full key id and the bare blinded element or the request. */
    {
        uint8_t key_id[PP_TOKEN_KEY_ID_LEN];
        OK(pp_issuer_token_key_id(issuer, key_id, sizeof key_id, &len));
        OK(pp_issuer_issue_blinded(issuer, key_id, sizeof key_id, request, request_len_got,
                                   response, sizeof response, &len));
        CHECK(len == response_len);
        OK(pp_issuer_issue_blinded(issuer, key_id, sizeof key_id, request + 3,
                                   request_len_got - 3, response, sizeof response, &len));
        CHECK(len == response_len);
        key_id[0] ^= 1;
        EXPECT_RC(pp_issuer_issue_blinded(issuer, key_id, sizeof key_id, request,
                                          request_len_got, response, sizeof response, &len),
                  PP_ERR_UNKNOWN_ISSUANCE_KEY);
    }

    /* What a service reads before it sends the token to its issuer: the type, the challenge
     * digest and the key id; and the keys of this type in a directory, with their key ids. */
    {
        uint16_t read_type = 0;
        uint8_t digest[32], key_id[PP_TOKEN_KEY_ID_LEN], issuer_key_id[PP_TOKEN_KEY_ID_LEN];
        uint8_t keys[2 * BIG];
        char directory[2048], key_b64[128], rsa_b64[512];
        size_t n;
        OK(pp_token_type(token, token_len, &read_type));
        CHECK(read_type == token_type);
        EXPECT_RC(pp_token_type(token, token_len - 1, &read_type), PP_ERR_INVALID_PARAMS);
        OK(pp_token_challenge_digest(token, token_len, digest, sizeof digest, &len));
        CHECK(len == 32 && memcmp(digest, token + 2 + PP_NONCE_LEN, 32) == 0);
        OK(pp_token_key_id(token, token_len, key_id, sizeof key_id, &len));
        OK(pp_issuer_token_key_id(issuer, issuer_key_id, sizeof issuer_key_id, &len));
        CHECK(memcmp(key_id, issuer_key_id, sizeof key_id) == 0);
        CHECK(pp_token_key_len(token_type) == key_len);
        CHECK(pp_token_key_len(PP_TOKEN_TYPE_BLIND_RSA) == PP_PUBLIC_KEY_LEN);
        CHECK(pp_token_key_len(7) == 0);

        b64std(key, key_len, 1, key_b64);
        b64std(rsa_key, PP_PUBLIC_KEY_LEN, 1, rsa_b64);
        n = (size_t)snprintf(directory, sizeof directory,
                             "{\"issuer-request-uri\": \"/token-request\", \"token-keys\": ["
                             "{\"token-type\": 2, \"token-key\": \"%s\"},"
                             "{\"token-type\": %u, \"token-key\": \"%s\"}]}",
                             rsa_b64, (unsigned)token_type, key_b64);
        REQUIRE(n < sizeof directory);
        OK(pp_directory_token_keys(directory, n, token_type, keys, sizeof keys, &len));
        CHECK(len == key_len && memcmp(keys, key, key_len) == 0);
        OK(pp_token_key_id_of_key(keys, len, key_id, sizeof key_id, &len));
        CHECK(len == PP_TOKEN_KEY_ID_LEN && memcmp(key_id, issuer_key_id, len) == 0);
        OK(pp_directory_token_keys(directory, n, PP_TOKEN_TYPE_BLIND_RSA, keys, sizeof keys, &len));
        CHECK(len == PP_PUBLIC_KEY_LEN && memcmp(keys, rsa_key, len) == 0);
        /* No key of the other VOPRF type: nothing, successfully. */
        OK(pp_directory_token_keys(directory, n,
                                   token_type == PP_TOKEN_TYPE_VOPRF_P384
                                       ? PP_TOKEN_TYPE_VOPRF_RISTRETTO255
                                       : PP_TOKEN_TYPE_VOPRF_P384,
                                   keys, sizeof keys, &len));
        CHECK(len == 0);
        EXPECT_RC(pp_directory_token_keys(directory, n, 7, keys, sizeof keys, &len),
                  PP_ERR_UNSUPPORTED_TOKEN);
        EXPECT_RC(pp_directory_token_keys(directory, n, token_type, keys, key_len - 1, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == key_len);
    }

    pp_redeemer_free(public_only);
    pp_verifier_free(verifier);
    pp_issuer_free(rsa);
    pp_redeemer_free(redeemer);
    pp_pending_token_free(pending);
    pp_client_free(client);
    pp_issuer_free(issuer);
}

static void test_key_errors(void) {
    pp_issuer *issuer = NULL;
    pp_client *client = NULL;
    pp_redeemer *redeemer = NULL;
    uint8_t zero[48] = {0}, ones[64];
    uint16_t token_type = 0;
    memset(ones, 0xff, sizeof ones);
    EXPECT_RC(pp_issuer_new_from_scalar(PP_TOKEN_TYPE_BLIND_RSA, ones, 48, &issuer),
              PP_ERR_UNSUPPORTED_TOKEN);
    EXPECT_RC(pp_issuer_new_from_scalar(7, ones, 48, &issuer), PP_ERR_UNSUPPORTED_TOKEN);
    EXPECT_RC(pp_issuer_new_from_scalar(PP_TOKEN_TYPE_VOPRF_P384, zero, 48, &issuer),
              PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_issuer_new_from_scalar(PP_TOKEN_TYPE_VOPRF_P384, ones, 48, &issuer),
              PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_issuer_new_from_scalar(PP_TOKEN_TYPE_VOPRF_P384, ones, 47, &issuer),
              PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_issuer_new_from_scalar(PP_TOKEN_TYPE_VOPRF_RISTRETTO255, ones, 32, &issuer),
              PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_issuer_new_from_scalar(PP_TOKEN_TYPE_VOPRF_P384, NULL, 48, &issuer),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_new_from_scalar(PP_TOKEN_TYPE_VOPRF_P384, ones, 48, NULL),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_generate_voprf(PP_TOKEN_TYPE_BLIND_RSA, &issuer),
              PP_ERR_UNSUPPORTED_TOKEN);
    EXPECT_RC(pp_issuer_generate_voprf(PP_TOKEN_TYPE_VOPRF_P384, NULL), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_token_type(NULL, &token_type), PP_ERR_NULL_ARGUMENT);
    CHECK(issuer == NULL);
    OK(pp_issuer_generate_voprf(PP_TOKEN_TYPE_VOPRF_RISTRETTO255, &issuer));
    EXPECT_RC(pp_issuer_token_type(issuer, NULL), PP_ERR_NULL_ARGUMENT);
    OK(pp_issuer_token_type(issuer, &token_type));
    CHECK(token_type == PP_TOKEN_TYPE_VOPRF_RISTRETTO255);
    EXPECT_RC(pp_redeemer_new_from_issuer(issuer, "ftp://nowhere", &redeemer),
              PP_ERR_INVALID_STORE_URL);
    EXPECT_RC(pp_redeemer_new_from_issuer(NULL, "memory:", &redeemer),
              PP_ERR_NULL_ARGUMENT);
    CHECK(redeemer == NULL);
    pp_issuer_free(issuer);
    {
        const char *bad = "-----BEGIN PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY-----\nAAAA\n"
                          "-----END PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY-----\n";
        issuer = NULL;
        EXPECT_RC(pp_issuer_new_from_pem(bad, strlen(bad), &issuer), PP_ERR_INVALID_KEY);
        CHECK(issuer == NULL);
    }

    EXPECT_RC(pp_client_new_voprf(PP_TOKEN_TYPE_BLIND_RSA, ones, 49, &client),
              PP_ERR_UNSUPPORTED_TOKEN);
    EXPECT_RC(pp_client_new_voprf(PP_TOKEN_TYPE_VOPRF_P384, ones, 49, &client), PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_client_new_voprf(PP_TOKEN_TYPE_VOPRF_P384, zero, 48, &client), PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_client_new_voprf(PP_TOKEN_TYPE_VOPRF_RISTRETTO255, ones, 32, &client),
              PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_client_new_voprf(PP_TOKEN_TYPE_VOPRF_P384, NULL, 49, &client),
              PP_ERR_NULL_ARGUMENT);
    CHECK(client == NULL);

    /* A salt given to a VOPRF client, a blind that is not a scalar. */
    {
        uint8_t key[BIG], challenge[256], nonce[PP_NONCE_LEN] = {1}, blind[48];
        size_t len = 0, challenge_len;
        pp_pending_token *pending = NULL;
        OK(pp_issuer_generate_voprf(PP_TOKEN_TYPE_VOPRF_P384, &issuer));
        OK(pp_issuer_public_key(issuer, key, sizeof key, &len));
        OK(pp_client_new_voprf(PP_TOKEN_TYPE_VOPRF_P384, key, len, &client));
        challenge_len = challenge_of(PP_TOKEN_TYPE_VOPRF_P384, challenge, sizeof challenge);
        memset(blind, 0xff, sizeof blind);
        EXPECT_RC(pp_client_request_with_randomness(client, challenge, challenge_len, nonce,
                                                    sizeof nonce, ones, PP_SALT_LEN, blind,
                                                    sizeof blind, &pending),
                  PP_ERR_INVALID_INPUT);
        EXPECT_RC(pp_client_request_with_randomness(client, challenge, challenge_len, nonce,
                                                    sizeof nonce, NULL, 0, blind, sizeof blind,
                                                    &pending),
                  PP_ERR_INVALID_INPUT);
        CHECK(pending == NULL);
        pp_client_free(client);
        pp_issuer_free(issuer);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTORS.json\n", argv[0]);
        return 2;
    }
    load_vectors(argv[1]);
    test_vectors();
    cycle(PP_TOKEN_TYPE_VOPRF_P384, PP_VOPRF_P384_PUBLIC_KEY_LEN, PP_VOPRF_P384_TOKEN_REQUEST_LEN,
          PP_VOPRF_P384_TOKEN_RESPONSE_LEN, PP_VOPRF_P384_TOKEN_LEN);
    cycle(PP_TOKEN_TYPE_VOPRF_RISTRETTO255, PP_VOPRF_RISTRETTO255_PUBLIC_KEY_LEN,
          PP_VOPRF_RISTRETTO255_TOKEN_REQUEST_LEN, PP_VOPRF_RISTRETTO255_TOKEN_RESPONSE_LEN,
          PP_VOPRF_RISTRETTO255_TOKEN_LEN);
    test_key_errors();
    free_vectors();
    printf("test_voprf: %d vectors, %d checks, %d failures\n", vector_count, checks, failures);
    return failures == 0 ? 0 : 1;
}
