/*
 * The C API of libprivacypass, tested from C: every RFC 9578 type 2 vector, the whole protocol
 * (issue -> finalize -> verify -> redeem -> double spend) with the memory and RocksDB stores,
 * every error path, 8 threads sharing one verifier and one redeemer, and fork() (handles made
 * before it, a memory: redeemer refusing in the child).
 *
 * Built by `make test-c` with -std=c99 -Wall -Wextra -Werror and ASan/UBSan, and again without
 * sanitizers under valgrind.
 *
 * usage: test_privacypass VECTORS.json SCRATCH_DIR
 *   VECTORS.json  tests/vectors/rfc9578-type2-blind-rsa.json
 *   SCRATCH_DIR   an empty directory for the RocksDB stores
 * Environment: PP_TEST_EXPECTED_VERSION, when set, must equal pp_version().
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privacypass.h"
#include "testing.h"
#include "vectors.h"

/* Byte buffers, hex and base64 are in testing.h, the vectors' reader in vectors.h. */

/* ---------------------------------------------------------------------------------------- */
/* Helpers over the API                                                                      */

/* SPKI DER -> PUBLIC KEY PEM text: standard base64 as openssl writes it, or (url != 0) the
 * base64url alphabet, which the library accepts too. */
static char *spki_pem(const bytes *spki, int url) {
    char *b64 = malloc(spki->len * 2 + 8);
    char *pem = malloc(spki->len * 2 + 128);
    size_t n, i, o = 0;
    REQUIRE(b64 && pem);
    n = url ? b64url(spki->data, spki->len, 1, b64) : b64std(spki->data, spki->len, 1, b64);
    o += (size_t)sprintf(pem + o, "-----BEGIN PUBLIC KEY-----\n");
    for (i = 0; i < n; i += 64) {
        size_t line = n - i < 64 ? n - i : 64;
        memcpy(pem + o, b64 + i, line);
        o += line;
        pem[o++] = '\n';
    }
    sprintf(pem + o, "-----END PUBLIC KEY-----\n");
    free(b64);
    return pem;
}

/* An issuer directory listing one key, with not-before. */
static char *directory_json(const bytes *spki, unsigned long long not_before) {
    char *b64 = malloc(spki->len * 2 + 8);
    char *json = malloc(spki->len * 2 + 512);
    REQUIRE(b64 && json);
    b64url(spki->data, spki->len, 1, b64);
    sprintf(json,
            "{\"issuer-request-uri\": \"https://issuer.example/token-request\",\n"
            " \"token-keys\": [\n"
            "  {\"token-type\": 1, \"token-key\": \"AAAA\", \"not-before\": 0},\n"
            "  {\"token-type\": 2, \"token-key\": \"%s\", \"not-before\": %llu}\n"
            " ]}",
            b64, not_before);
    free(b64);
    return json;
}

static size_t encode_challenge(const char *issuer_name, const uint8_t *context, size_t context_len,
                               const char *origins, uint8_t *out, size_t cap) {
    size_t len = 0;
    OK(pp_challenge_encode(PP_TOKEN_TYPE_BLIND_RSA, issuer_name, strlen(issuer_name), context,
                           context_len, origins, origins ? strlen(origins) : 0, out, cap, &len));
    return len;
}

/* ---------------------------------------------------------------------------------------- */

static void test_version_and_codes(void) {
    const char *expected = getenv("PP_TEST_EXPECTED_VERSION");
    char macro_version[32];
    REQUIRE(pp_version() != NULL);
    CHECK(strcmp(pp_version(), PP_VERSION) == 0);
    sprintf(macro_version, "%d.%d.%d", PP_VERSION_MAJOR, PP_VERSION_MINOR, PP_VERSION_PATCH);
    CHECK(strcmp(macro_version, PP_VERSION) == 0);
    if (expected) {
        if (strcmp(expected, pp_version()) != 0) {
            fprintf(stderr, "pp_version() %s, Cargo.toml %s\n", pp_version(), expected);
        }
        CHECK(strcmp(expected, pp_version()) == 0);
    }

    /* The protocol codes are the JSON-RPC codes of the error table. */
    CHECK(PP_OK == 0);
    CHECK(PP_ERR_VERIFICATION_FAILED == -32020);
    CHECK(PP_ERR_ALREADY_SPENT == -32021);
    CHECK(PP_ERR_UNSUPPORTED_TOKEN == -32022);
    CHECK(PP_ERR_UNKNOWN_ISSUANCE_KEY == -32023);
    CHECK(PP_ERR_UNPROCESSABLE_BLINDED_TOKEN == -32024);
    CHECK(PP_ERR_STORE_UNAVAILABLE == -32050);
    CHECK(PP_ERR_INVALID_PARAMS == -32602);
    CHECK(pp_result_jsonrpc_code(PP_ERR_ALREADY_SPENT) == -32021);
    CHECK(pp_result_http_status(PP_ERR_ALREADY_SPENT) == 403);
    CHECK(pp_result_http_status(PP_ERR_STORE_UNAVAILABLE) == 503);
    CHECK(pp_result_http_status(PP_ERR_UNKNOWN_ISSUANCE_KEY) == 404);
    CHECK(pp_result_http_status(PP_OK) == 200);
    CHECK(pp_result_http_status(PP_ERR_NULL_ARGUMENT) == 500);
    CHECK(pp_result_jsonrpc_code(PP_ERR_PANIC) == -32603);
    CHECK(strcmp(pp_result_str(PP_ERR_ALREADY_SPENT), "token already spent") == 0);
    CHECK(strstr(pp_result_str(PP_ERR_INVALID_PARAMS), "malformed token") != NULL);
    CHECK(strstr(pp_result_str(PP_ERR_UNSUPPORTED_TOKEN), "another token type") != NULL);
    CHECK(strcmp(pp_result_str(PP_OK), "success") == 0);
    CHECK(strcmp(pp_result_str(424242), "unknown result code") == 0);
    CHECK(strstr(pp_result_str(PP_ERR_BUFFER_TOO_SMALL), "too small") != NULL);
}

/* Every RFC 9578 type 2 vector, through every way in. */
static void test_vectors(void) {
    int i;
    CHECK(vector_count == 5);
    for (i = 0; i < vector_count; i++) {
        const vector *v = &vectors[i];
        const bytes *sk = get(v, "skS"), *pk = get(v, "pkS"), *challenge = get(v, "token_challenge");
        const bytes *nonce = get(v, "nonce"), *blind = get(v, "blind"), *salt = get(v, "salt");
        const bytes *request = get(v, "token_request"), *response = get(v, "token_response");
        const bytes *token = get(v, "token");
        uint8_t buf[1024];
        char header[1024];
        size_t len = 0, header_len = 0;
        pp_issuer *issuer = NULL;
        pp_client *client = NULL;
        pp_pending_token *pending = NULL;
        pp_verifier *verifier = NULL, *from_pem = NULL, *from_url_pem = NULL, *from_dir = NULL;
        pp_redeemer *redeemer = NULL;
        char *pem, *url_pem, *json;
        uint8_t other[64];
        size_t other_len;

        fprintf(stderr, "  vector %d\n", i);
        /* Issuer: the key, its public half, and byte-identical responses in both forms. */
        OK(pp_issuer_new_from_pem((const char *)sk->data, sk->len, &issuer));
        REQUIRE(issuer != NULL);
        OK(pp_issuer_public_key(issuer, buf, sizeof buf, &len));
        CHECK(same(buf, len, pk));
        OK(pp_issuer_token_key_id(issuer, buf, sizeof buf, &len));
        CHECK(len == PP_TOKEN_KEY_ID_LEN && memcmp(buf, token->data + 66, 32) == 0);
        OK(pp_issuer_issue(issuer, request->data, request->len, buf, sizeof buf, &len));
        CHECK(same(buf, len, response));
        OK(pp_issuer_issue_blinded(issuer, token->data + 66, 32, request->data, request->len, buf,
                                   sizeof buf, &len));
        CHECK(same(buf, len, response));
        OK(pp_issuer_issue_blinded(issuer, token->data + 66, 32, request->data + 3,
                                   request->len - 3, buf, sizeof buf, &len));
        CHECK(same(buf, len, response));

        /* Client: the same request from the vector's randomness, then the same token. */
        OK(pp_client_new(pk->data, pk->len, &client));
        OK(pp_client_request_with_randomness(client, challenge->data, challenge->len, nonce->data,
                                             nonce->len, salt->data, salt->len, blind->data,
                                             blind->len, &pending));
        REQUIRE(pending != NULL);
        OK(pp_pending_token_request(pending, buf, sizeof buf, &len));
        CHECK(same(buf, len, request));
        OK(pp_pending_token_finalize(pending, response->data, response->len, buf, sizeof buf, &len));
        CHECK(same(buf, len, token));

        /* Verifiers from SPKI, PEM (standard and url alphabets) and directory: bound to its
         * challenge, to none, not to another. */
        OK(pp_verifier_new_from_spki(pk->data, pk->len, &verifier));
        pem = spki_pem(pk, 0);
        OK(pp_verifier_new_from_pem(pem, strlen(pem), &from_pem));
        url_pem = spki_pem(pk, 1);
        CHECK(strcmp(pem, url_pem) != 0);
        OK(pp_verifier_new_from_pem(url_pem, strlen(url_pem), &from_url_pem));
        json = directory_json(pk, 0);
        OK(pp_verifier_new_from_directory(json, strlen(json), &from_dir));
        other_len = encode_challenge("other.example", NULL, 0, NULL, other, sizeof other);
        {
            const pp_verifier *all[4];
            int k;
            all[0] = verifier;
            all[1] = from_pem;
            all[2] = from_url_pem;
            all[3] = from_dir;
            for (k = 0; k < 4; k++) {
                OK(pp_verifier_verify(all[k], token->data, token->len, challenge->data,
                                      challenge->len));
                OK(pp_verifier_verify(all[k], token->data, token->len, NULL, 0));
                EXPECT_RC(pp_verifier_verify(all[k], token->data, token->len, other, other_len),
                          PP_ERR_VERIFICATION_FAILED);
            }
        }

        /* Authorization header round trip. */
        OK(pp_authorization_encode(token->data, token->len, header, sizeof header, &header_len));
        CHECK(header_len > 13 && memcmp(header, "PrivateToken token=\"", 20) == 0);
        OK(pp_authorization_parse(header, header_len, buf, sizeof buf, &len));
        CHECK(same(buf, len, token));
        OK(pp_verifier_verify_authorization(verifier, header, header_len, challenge->data,
                                            challenge->len));

        /* Redeemer: once. */
        OK(pp_redeemer_new(verifier, "memory:", &redeemer));
        OK(pp_redeemer_redeem(redeemer, token->data, token->len, challenge->data, challenge->len));
        EXPECT_RC(pp_redeemer_redeem(redeemer, token->data, token->len, challenge->data,
                                     challenge->len),
                  PP_ERR_ALREADY_SPENT);
        EXPECT_RC(pp_redeemer_redeem_authorization(redeemer, header, header_len, NULL, 0),
                  PP_ERR_ALREADY_SPENT);

        free(pem);
        free(url_pem);
        free(json);
        pp_redeemer_free(redeemer);
        pp_verifier_free(verifier);
        pp_verifier_free(from_pem);
        pp_verifier_free(from_url_pem);
        pp_verifier_free(from_dir);
        pp_pending_token_free(pending);
        pp_client_free(client);
        pp_issuer_free(issuer);
    }
}

/* The whole protocol as an origin, a client and an issuer run it, with a given store. */
static void cycle(const pp_issuer *issuer, const char *store_url) {
    uint8_t spki[PP_PUBLIC_KEY_LEN], context[PP_REDEMPTION_CONTEXT_LEN], challenge[256];
    uint8_t request[PP_TOKEN_REQUEST_LEN], response[PP_TOKEN_RESPONSE_LEN], token[PP_TOKEN_LEN];
    char www[1024], authorization[1024];
    size_t spki_len = 0, challenge_len, www_len = 0, len = 0, auth_len = 0;
    uint64_t max_age = 3600;
    pp_verifier *verifier = NULL;
    pp_redeemer *redeemer = NULL;
    pp_client *client = NULL;
    pp_pending_token *pending = NULL;

    fprintf(stderr, "  cycle with %s\n", store_url);
    memset(context, 0x5a, sizeof context);
    OK(pp_issuer_public_key(issuer, spki, sizeof spki, &spki_len));

    /* Origin: a challenge and its WWW-Authenticate value. */
    challenge_len = encode_challenge("issuer.example", context, sizeof context,
                                     "origin.example,other.example", challenge, sizeof challenge);
    OK(pp_challenge_www_authenticate(challenge, challenge_len, spki, spki_len, &max_age, www,
                                     sizeof www, &www_len));
    CHECK(www_len > 0 && memcmp(www, "PrivateToken challenge=\"", 24) == 0);
    CHECK(www_len >= 16 && memcmp(www + www_len - 16, ", max-age=\"3600\"", 16) == 0);
    OK(pp_challenge_www_authenticate(challenge, challenge_len, spki, spki_len, NULL, www,
                                     sizeof www, &len));
    CHECK(len == www_len - 16);

    /* Client -> issuer -> client. */
    OK(pp_client_new(spki, spki_len, &client));
    OK(pp_client_request(client, challenge, challenge_len, &pending));
    OK(pp_pending_token_request(pending, request, sizeof request, &len));
    OK(pp_issuer_issue(issuer, request, len, response, sizeof response, &len));
    OK(pp_pending_token_finalize(pending, response, len, token, sizeof token, &len));
    CHECK(len == PP_TOKEN_LEN);
    OK(pp_authorization_encode(token, len, authorization, sizeof authorization, &auth_len));

    /* Origin: verify, redeem once, refuse the second spend. */
    OK(pp_verifier_new_from_spki(spki, spki_len, &verifier));
    OK(pp_verifier_verify_authorization(verifier, authorization, auth_len, challenge,
                                        challenge_len));
    OK(pp_redeemer_new(verifier, store_url, &redeemer));
    pp_verifier_free(verifier); /* the redeemer keeps what it needs */
    OK(pp_redeemer_redeem_authorization(redeemer, authorization, auth_len, challenge,
                                        challenge_len));
    EXPECT_RC(pp_redeemer_redeem_authorization(redeemer, authorization, auth_len, challenge,
                                               challenge_len),
              PP_ERR_ALREADY_SPENT);
    EXPECT_RC(pp_redeemer_redeem(redeemer, token, sizeof token, challenge, challenge_len),
              PP_ERR_ALREADY_SPENT);
    EXPECT_RC(pp_redeemer_redeem(redeemer, token, sizeof token, NULL, 0), PP_ERR_ALREADY_SPENT);

    pp_redeemer_free(redeemer);
    pp_pending_token_free(pending);
    pp_client_free(client);
}

/* Threads of this process (Linux). */
static int thread_count(void) {
    DIR *dir = opendir("/proc/self/task");
    struct dirent *entry;
    int n = 0;
    REQUIRE(dir != NULL);
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] != '.') n++;
    }
    closedir(dir);
    return n;
}

static void test_cycles(const pp_issuer *issuer, const char *scratch) {
    char url[1024];
    /* Verifying, issuing, the client and the memory store start no thread. */
    int threads = thread_count();
    cycle(issuer, "memory:");
    cycle(issuer, "memory:1000");
    CHECK(thread_count() == threads);
    snprintf(url, sizeof url, "rocksdb:%s/spends", scratch);
    cycle(issuer, url);

    /* Durable: a spend survives closing and reopening the store. */
    {
        uint8_t spki[PP_PUBLIC_KEY_LEN], challenge[64], token[PP_TOKEN_LEN];
        size_t spki_len = 0, challenge_len;
        pp_verifier *verifier = NULL;
        pp_redeemer *redeemer = NULL;
        challenge_len = encode_challenge("issuer.example", NULL, 0, NULL, challenge, sizeof challenge);
        make_token(issuer, challenge, challenge_len, token);
        OK(pp_issuer_public_key(issuer, spki, sizeof spki, &spki_len));
        OK(pp_verifier_new_from_spki(spki, spki_len, &verifier));
        snprintf(url, sizeof url, "rocksdb:%s/durable", scratch);
        OK(pp_redeemer_new(verifier, url, &redeemer));
        OK(pp_redeemer_redeem(redeemer, token, sizeof token, challenge, challenge_len));
        /* One process, one handle at a time per path: a second open is refused, not shared. */
        {
            pp_redeemer *second = (pp_redeemer *)&failures;
            EXPECT_RC(pp_redeemer_new(verifier, url, &second), PP_ERR_STORE_UNAVAILABLE);
            CHECK(second == (pp_redeemer *)&failures);
        }
        pp_redeemer_free(redeemer);
        redeemer = NULL;
        OK(pp_redeemer_new(verifier, url, &redeemer));
        EXPECT_RC(pp_redeemer_redeem(redeemer, token, sizeof token, challenge, challenge_len),
                  PP_ERR_ALREADY_SPENT);
        pp_redeemer_free(redeemer);
        pp_verifier_free(verifier);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Error paths                                                                                */

static void test_null_and_buffer_errors(const pp_issuer *issuer) {
    uint8_t spki[PP_PUBLIC_KEY_LEN], challenge[64], token[PP_TOKEN_LEN], buf[1024];
    uint8_t key_id[PP_TOKEN_KEY_ID_LEN], nonce[PP_NONCE_LEN] = {1}, salt[PP_SALT_LEN] = {2};
    uint8_t blind[PP_BLINDED_MSG_LEN] = {3};
    uint8_t request[PP_TOKEN_REQUEST_LEN];
    char text[1024];
    size_t spki_len = 0, challenge_len, len = 0, i;
    pp_verifier *verifier = NULL;
    pp_redeemer *redeemer = NULL;
    pp_client *client = NULL;
    pp_pending_token *pending = NULL;
    /* Out-parameters must keep these values whenever a call fails. */
    pp_verifier *const vsentinel = (pp_verifier *)&failures;
    pp_verifier *vout;
    pp_issuer *iout;
    pp_client *cout;
    pp_pending_token *pout;
    pp_redeemer *rout;
    const size_t len_sentinel = 777;

    OK(pp_issuer_public_key(issuer, spki, sizeof spki, &spki_len));
    OK(pp_issuer_token_key_id(issuer, key_id, sizeof key_id, &len));
    challenge_len = encode_challenge("issuer.example", NULL, 0, NULL, challenge, sizeof challenge);
    make_token(issuer, challenge, challenge_len, token);
    OK(pp_verifier_new_from_spki(spki, spki_len, &verifier));
    OK(pp_redeemer_new(verifier, "memory:", &redeemer));
    OK(pp_client_new(spki, spki_len, &client));
    OK(pp_client_request(client, challenge, challenge_len, &pending));
    OK(pp_pending_token_request(pending, request, sizeof request, &len));

    /* _free(NULL) is a no-op. */
    pp_verifier_free(NULL);
    pp_redeemer_free(NULL);
    pp_issuer_free(NULL);
    pp_client_free(NULL);
    pp_pending_token_free(NULL);

    /* NULL handles. */
    EXPECT_RC(pp_verifier_verify(NULL, token, sizeof token, NULL, 0), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_verifier_verify_authorization(NULL, "x", 1, NULL, 0), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_redeemer_redeem(NULL, token, sizeof token, NULL, 0), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_redeemer_redeem_authorization(NULL, "x", 1, NULL, 0), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_redeemer_new(NULL, "memory:", &rout), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_public_key(NULL, buf, sizeof buf, &len), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_token_key_id(NULL, buf, sizeof buf, &len), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_issue(NULL, request, sizeof request, buf, sizeof buf, &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_issue_blinded(NULL, token + 66, 32, request, sizeof request, buf,
                                      sizeof buf, &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_client_request(NULL, challenge, challenge_len, &pout), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_client_request_with_randomness(NULL, challenge, challenge_len, token, 32, token,
                                                48, token, 256, &pout),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_pending_token_request(NULL, buf, sizeof buf, &len), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_pending_token_finalize(NULL, buf, 256, buf, sizeof buf, &len),
              PP_ERR_NULL_ARGUMENT);

    /* NULL out-parameters, (NULL, n > 0) inputs and outputs, NULL strings. */
    EXPECT_RC(pp_verifier_new_from_spki(spki, spki_len, NULL), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_verifier_new_from_spki(NULL, spki_len, &vout), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_verifier_new_from_pem(NULL, 10, &vout), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_verifier_new_from_pem("x", 1, NULL), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_verifier_new_from_directory(NULL, 10, &vout), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_verifier_new_from_directory("{}", 2, NULL), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_client_request_with_randomness(client, challenge, challenge_len, nonce,
                                                sizeof nonce, salt, sizeof salt, blind,
                                                sizeof blind, NULL),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_client_request_with_randomness(client, challenge, challenge_len, NULL,
                                                sizeof nonce, salt, sizeof salt, blind,
                                                sizeof blind, &pout),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_verifier_verify(verifier, NULL, sizeof token, NULL, 0), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_verifier_verify(verifier, token, sizeof token, NULL, 5), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_verifier_verify_authorization(verifier, NULL, 5, NULL, 0), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_redeemer_new(verifier, NULL, &rout), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_redeemer_new(verifier, "memory:", NULL), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_redeemer_redeem(redeemer, NULL, 1, NULL, 0), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_new_from_pem(NULL, 5, &iout), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_new_from_pem("x", 1, NULL), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_generate(NULL), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_client_new(spki, spki_len, NULL), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_client_request(client, challenge, challenge_len, NULL), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_client_request(client, NULL, challenge_len, &pout), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_public_key(issuer, buf, sizeof buf, NULL), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_public_key(issuer, NULL, sizeof buf, &len), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_pending_token_request(pending, NULL, 10, &len), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_challenge_encode(2, NULL, 3, NULL, 0, NULL, 0, buf, sizeof buf, &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_challenge_www_authenticate(challenge, challenge_len, spki, spki_len, NULL, text,
                                            sizeof text, NULL),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_authorization_encode(NULL, 354, text, sizeof text, &len), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_authorization_parse(NULL, 3, buf, sizeof buf, &len), PP_ERR_NULL_ARGUMENT);

    /* Failed constructors leave *out alone. */
    vout = vsentinel;
    EXPECT_RC(pp_verifier_new_from_spki(spki, 10, &vout), PP_ERR_INVALID_KEY);
    CHECK(vout == vsentinel);
    EXPECT_RC(pp_verifier_new_from_pem("-----BEGIN PUBLIC KEY-----\n", 27, &vout),
              PP_ERR_INVALID_KEY);
    CHECK(vout == vsentinel);
    EXPECT_RC(pp_verifier_new_from_directory("{\"token-keys\": []}", 18, &vout),
              PP_ERR_INVALID_KEY);
    CHECK(vout == vsentinel);
    iout = (pp_issuer *)vsentinel;
    EXPECT_RC(pp_issuer_new_from_pem("nope", 4, &iout), PP_ERR_INVALID_KEY);
    CHECK(iout == (pp_issuer *)vsentinel);
    cout = (pp_client *)vsentinel;
    EXPECT_RC(pp_client_new(spki, spki_len - 1, &cout), PP_ERR_INVALID_KEY);
    CHECK(cout == (pp_client *)vsentinel);
    pout = (pp_pending_token *)vsentinel;
    EXPECT_RC(pp_client_request(client, challenge, challenge_len - 1, &pout), PP_ERR_INVALID_INPUT);
    CHECK(pout == (pp_pending_token *)vsentinel);
    EXPECT_RC(pp_client_request_with_randomness(client, challenge, challenge_len, nonce,
                                                sizeof nonce - 1, salt, sizeof salt, blind,
                                                sizeof blind, &pout),
              PP_ERR_INVALID_INPUT);
    CHECK(pout == (pp_pending_token *)vsentinel);
    rout = (pp_redeemer *)vsentinel;
    EXPECT_RC(pp_redeemer_new(verifier, "ftp://nowhere", &rout), PP_ERR_INVALID_STORE_URL);
    CHECK(rout == (pp_redeemer *)vsentinel);

    /* Short buffers: the length needed, nothing written; (NULL, 0) is a size query. */
    {
        memset(buf, 0xAA, sizeof buf);
        len = len_sentinel;
        EXPECT_RC(pp_issuer_public_key(issuer, buf, PP_PUBLIC_KEY_LEN - 1, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == PP_PUBLIC_KEY_LEN);
        EXPECT_RC(pp_issuer_token_key_id(issuer, NULL, 0, &len), PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == PP_TOKEN_KEY_ID_LEN);
        EXPECT_RC(pp_pending_token_request(pending, buf, 1, &len), PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == PP_TOKEN_REQUEST_LEN);
        EXPECT_RC(pp_issuer_issue(issuer, request, sizeof request, buf, 255, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == PP_TOKEN_RESPONSE_LEN);
        len = len_sentinel;
        EXPECT_RC(pp_issuer_issue_blinded(issuer, key_id, sizeof key_id, request + 3,
                                          PP_BLINDED_MSG_LEN, buf, 255, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == PP_TOKEN_RESPONSE_LEN);
        EXPECT_RC(pp_challenge_encode(2, "issuer.example", 14, NULL, 0, NULL, 0, buf, 8, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == challenge_len);
        EXPECT_RC(pp_authorization_encode(token, sizeof token, (char *)buf, 10, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == 20 + 472 + 1); /* PrivateToken token="<472 base64url chars>" */
        EXPECT_RC(pp_authorization_parse("PrivateToken token=AQID", 23, buf, 2, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == 3);
        EXPECT_RC(pp_challenge_www_authenticate(challenge, challenge_len, spki, spki_len, NULL,
                                                NULL, 0, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len > 400);
        for (i = 0; i < sizeof buf; i++) {
            if (buf[i] != 0xAA) break;
        }
        CHECK(i == sizeof buf); /* nothing was written into the short buffers */
        /* With the size reported, the call succeeds. */
        EXPECT_RC(pp_authorization_encode(token, sizeof token, text, 20 + 472 + 1, &len), PP_OK);
        /* Finalize with a short buffer: the token is not lost, the call can be repeated. */
        {
            uint8_t response[PP_TOKEN_RESPONSE_LEN];
            OK(pp_issuer_issue(issuer, request, sizeof request, response, sizeof response, &len));
            EXPECT_RC(pp_pending_token_finalize(pending, response, sizeof response, buf, 100, &len),
                      PP_ERR_BUFFER_TOO_SMALL);
            CHECK(len == PP_TOKEN_LEN);
            OK(pp_pending_token_finalize(pending, response, sizeof response, buf, sizeof buf, &len));
            CHECK(len == PP_TOKEN_LEN);
            OK(pp_verifier_verify(verifier, buf, len, challenge, challenge_len));
        }
    }

    /* A failing call leaves *out_len alone. */
    len = len_sentinel;
    EXPECT_RC(pp_issuer_issue(issuer, request, 10, buf, sizeof buf, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    CHECK(len == len_sentinel);
    EXPECT_RC(pp_authorization_parse("Bearer abc", 10, buf, sizeof buf, &len), PP_ERR_INVALID_PARAMS);
    CHECK(len == len_sentinel);

    pp_pending_token_free(pending);
    pp_client_free(client);
    pp_redeemer_free(redeemer);
    pp_verifier_free(verifier);
}

static void test_protocol_errors(const pp_issuer *issuer) {
    uint8_t spki[PP_PUBLIC_KEY_LEN], challenge[64], other[64], token[PP_TOKEN_LEN], bad[1024];
    uint8_t key_id[PP_TOKEN_KEY_ID_LEN], request[PP_TOKEN_REQUEST_LEN], buf[1024];
    uint8_t ones[PP_TOKEN_RESPONSE_LEN];
    char header[1024];
    size_t spki_len = 0, challenge_len, other_len, len = 0, header_len = 0;
    pp_verifier *verifier = NULL, *pending_key = NULL;
    pp_redeemer *redeemer = NULL;
    pp_client *client = NULL;
    pp_pending_token *pending = NULL;
    pp_verifier *vout = NULL;
    pp_redeemer *rout = NULL;
    pp_pending_token *pout = NULL;
    char *json;
    const bytes *vector_pk = get(&vectors[1], "pkS");

    OK(pp_issuer_public_key(issuer, spki, sizeof spki, &spki_len));
    OK(pp_issuer_token_key_id(issuer, key_id, sizeof key_id, &len));
    challenge_len = encode_challenge("issuer.example", NULL, 0, NULL, challenge, sizeof challenge);
    other_len = encode_challenge("issuer.example", NULL, 0, "elsewhere.example", other, sizeof other);
    make_token(issuer, challenge, challenge_len, token);
    OK(pp_verifier_new_from_spki(spki, spki_len, &verifier));
    OK(pp_redeemer_new(verifier, "memory:", &redeemer));
    OK(pp_client_new(spki, spki_len, &client));
    OK(pp_client_request(client, challenge, challenge_len, &pending));
    OK(pp_pending_token_request(pending, request, sizeof request, &len));

    /* Tokens: tampered, truncated, too long, another type, other challenge, unknown key. */
    memcpy(bad, token, sizeof token);
    bad[sizeof token - 1] ^= 1;
    EXPECT_RC(pp_verifier_verify(verifier, bad, sizeof token, NULL, 0), PP_ERR_VERIFICATION_FAILED);
    EXPECT_RC(pp_redeemer_redeem(redeemer, bad, sizeof token, NULL, 0), PP_ERR_VERIFICATION_FAILED);
    memcpy(bad, token, sizeof token);
    bad[10] ^= 1; /* the nonce: the signature no longer matches */
    EXPECT_RC(pp_verifier_verify(verifier, bad, sizeof token, NULL, 0), PP_ERR_VERIFICATION_FAILED);
    /* Bytes of type 2 that are not a token (truncated, trailing bytes, empty) are invalid
     * params (-32602); a token of another type is unsupported (-32022). */
    EXPECT_RC(pp_verifier_verify(verifier, token, sizeof token - 1, NULL, 0), PP_ERR_INVALID_PARAMS);
    EXPECT_RC(pp_verifier_verify(verifier, token, 100, NULL, 0), PP_ERR_INVALID_PARAMS);
    EXPECT_RC(pp_redeemer_redeem(redeemer, token, 100, NULL, 0), PP_ERR_INVALID_PARAMS);
    CHECK(pp_result_jsonrpc_code(PP_ERR_INVALID_PARAMS) == -32602);
    CHECK(pp_result_http_status(PP_ERR_INVALID_PARAMS) == 400);
    memcpy(bad, token, sizeof token);
    bad[sizeof token] = 0;
    EXPECT_RC(pp_verifier_verify(verifier, bad, sizeof token + 1, NULL, 0), PP_ERR_INVALID_PARAMS);
    EXPECT_RC(pp_redeemer_redeem(redeemer, bad, sizeof token + 1, NULL, 0), PP_ERR_INVALID_PARAMS);
    EXPECT_RC(pp_verifier_verify(verifier, token, 0, NULL, 0), PP_ERR_INVALID_PARAMS);
    EXPECT_RC(pp_verifier_verify(verifier, NULL, 0, NULL, 0), PP_ERR_INVALID_PARAMS);
    memcpy(bad, token, sizeof token);
    bad[1] = 7;
    EXPECT_RC(pp_verifier_verify(verifier, bad, sizeof token, NULL, 0), PP_ERR_UNSUPPORTED_TOKEN);
    EXPECT_RC(pp_redeemer_redeem(redeemer, bad, sizeof token, NULL, 0), PP_ERR_UNSUPPORTED_TOKEN);
    bad[1] = 3; /* also when truncated: the type decides first */
    EXPECT_RC(pp_verifier_verify(verifier, bad, sizeof token, NULL, 0), PP_ERR_UNSUPPORTED_TOKEN);
    EXPECT_RC(pp_verifier_verify(verifier, bad, 100, NULL, 0), PP_ERR_UNSUPPORTED_TOKEN);
    EXPECT_RC(pp_redeemer_redeem(redeemer, bad, 100, NULL, 0), PP_ERR_UNSUPPORTED_TOKEN);
    CHECK(pp_result_jsonrpc_code(PP_ERR_UNSUPPORTED_TOKEN) == -32022);
    EXPECT_RC(pp_verifier_verify(verifier, token, sizeof token, other, other_len),
              PP_ERR_VERIFICATION_FAILED);
    EXPECT_RC(pp_redeemer_redeem(redeemer, token, sizeof token, other, other_len),
              PP_ERR_VERIFICATION_FAILED);
    memcpy(bad, token, sizeof token);
    bad[66] ^= 1; /* token_key_id */
    EXPECT_RC(pp_verifier_verify(verifier, bad, sizeof token, NULL, 0), PP_ERR_VERIFICATION_FAILED);
    memcpy(bad, token, sizeof token);
    memset(bad + 98, 0xff, 256); /* authenticator above the modulus */
    EXPECT_RC(pp_verifier_verify(verifier, bad, sizeof token, NULL, 0), PP_ERR_VERIFICATION_FAILED);
    /* A failed redeem spent nothing. */
    OK(pp_redeemer_redeem(redeemer, token, sizeof token, challenge, challenge_len));

    /* A key that is not valid yet (directory not-before in the future). */
    json = directory_json(&(bytes){spki, spki_len}, 4000000000ULL);
    OK(pp_verifier_new_from_directory(json, strlen(json), &pending_key));
    EXPECT_RC(pp_verifier_verify(pending_key, token, sizeof token, NULL, 0), PP_ERR_VERIFICATION_FAILED);
    pp_verifier_free(pending_key);
    free(json);

    /* Authorization values: bad base64, wrong scheme, no token, two tokens, not UTF-8. */
    {
        static const char *const malformed[] = {
            "PrivateToken token=\"*not base64*\"",
            "PrivateToken token=\"AAAA",
            "Bearer abcdef",
            "PrivateToken",
            "PrivateToken token=AAAA, token=AAAA",
            "",
            "\xff\xfe",
        };
        size_t k;
        for (k = 0; k < sizeof malformed / sizeof malformed[0]; k++) {
            EXPECT_RC(pp_verifier_verify_authorization(verifier, malformed[k], strlen(malformed[k]),
                                                       NULL, 0),
                      PP_ERR_INVALID_PARAMS);
            EXPECT_RC(pp_redeemer_redeem_authorization(redeemer, malformed[k], strlen(malformed[k]),
                                                       NULL, 0),
                      PP_ERR_INVALID_PARAMS);
            EXPECT_RC(pp_authorization_parse(malformed[k], strlen(malformed[k]), buf, sizeof buf,
                                             &len),
                      PP_ERR_INVALID_PARAMS);
        }
        /* Well-formed base64 of a type 2 token of the wrong length: invalid params, as for the
         * bytes; of a token of type 3: unsupported. */
        EXPECT_RC(pp_verifier_verify_authorization(verifier, "PrivateToken token=AAIA", 23, NULL, 0),
                  PP_ERR_INVALID_PARAMS);
        EXPECT_RC(pp_redeemer_redeem_authorization(redeemer, "PrivateToken token=AAIA", 23, NULL, 0),
                  PP_ERR_INVALID_PARAMS);
        EXPECT_RC(pp_verifier_verify_authorization(verifier, "PrivateToken token=AAMA", 23, NULL, 0),
                  PP_ERR_UNSUPPORTED_TOKEN);
        EXPECT_RC(pp_redeemer_redeem_authorization(redeemer, "PrivateToken token=AAMA", 23, NULL, 0),
                  PP_ERR_UNSUPPORTED_TOKEN);
        /* Unpadded and unquoted is fine. */
        memcpy(header, "PrivateToken token=", 19);
        header_len = 19 + b64url(token, sizeof token, 0, header + 19);
        OK(pp_verifier_verify_authorization(verifier, header, header_len, challenge, challenge_len));
        EXPECT_RC(pp_authorization_encode(token, 100, header, sizeof header, &len),
                  PP_ERR_INVALID_PARAMS);
        memcpy(bad, token, sizeof token);
        bad[1] = 3;
        EXPECT_RC(pp_authorization_encode(bad, sizeof token, header, sizeof header, &len),
                  PP_ERR_UNSUPPORTED_TOKEN);
    }

    /* Issuance: wrong lengths, wrong type, other truncated id, not below the modulus, key ids. */
    EXPECT_RC(pp_issuer_issue(issuer, request, sizeof request - 1, buf, sizeof buf, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    EXPECT_RC(pp_issuer_issue(issuer, NULL, 0, buf, sizeof buf, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    memcpy(bad, request, sizeof request);
    bad[1] = 1;
    EXPECT_RC(pp_issuer_issue(issuer, bad, sizeof request, buf, sizeof buf, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    memcpy(bad, request, sizeof request);
    bad[2] ^= 1;
    EXPECT_RC(pp_issuer_issue(issuer, bad, sizeof request, buf, sizeof buf, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    EXPECT_RC(pp_issuer_issue_blinded(issuer, key_id, sizeof key_id, bad, sizeof request, buf,
                                      sizeof buf, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    memset(bad, 0xff, 256);
    EXPECT_RC(pp_issuer_issue_blinded(issuer, key_id, sizeof key_id, bad, 256, buf, sizeof buf, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    EXPECT_RC(pp_issuer_issue_blinded(issuer, key_id, sizeof key_id, request + 3, 255, buf,
                                      sizeof buf, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    EXPECT_RC(pp_issuer_issue_blinded(issuer, key_id, 31, request, sizeof request, buf, sizeof buf,
                                      &len),
              PP_ERR_UNKNOWN_ISSUANCE_KEY);
    key_id[0] ^= 1;
    EXPECT_RC(pp_issuer_issue_blinded(issuer, key_id, sizeof key_id, request, sizeof request, buf,
                                      sizeof buf, &len),
              PP_ERR_UNKNOWN_ISSUANCE_KEY);

    /* Client: wrong lengths of nonce, salt, blind; bad challenges; bad responses. */
    memset(bad, 1, sizeof bad);
    EXPECT_RC(pp_client_request_with_randomness(client, challenge, challenge_len, bad, 31, bad, 48,
                                                bad, 256, &pout),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_client_request_with_randomness(client, challenge, challenge_len, bad, 32, bad, 47,
                                                bad, 256, &pout),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_client_request_with_randomness(client, challenge, challenge_len, bad, 32, bad, 48,
                                                bad, 0, &pout),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_client_request_with_randomness(client, challenge, challenge_len, bad, 32, bad, 48,
                                                bad, 513, &pout),
              PP_ERR_INVALID_INPUT);
    memset(bad, 0, 256); /* r = 0 is not invertible */
    EXPECT_RC(pp_client_request_with_randomness(client, challenge, challenge_len, bad, 32, bad, 48,
                                                bad, 256, &pout),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_client_request(client, NULL, 0, &pout), PP_ERR_INVALID_INPUT);
    {
        uint8_t type1[64];
        size_t type1_len = 0;
        OK(pp_challenge_encode(1, "issuer.example", 14, NULL, 0, NULL, 0, type1, sizeof type1,
                               &type1_len));
        EXPECT_RC(pp_client_request(client, type1, type1_len, &pout), PP_ERR_UNSUPPORTED_TOKEN);
    }
    EXPECT_RC(pp_pending_token_finalize(pending, buf, 255, buf, sizeof buf, &len),
              PP_ERR_INVALID_INPUT);
    memset(ones, 1, sizeof ones);
    EXPECT_RC(pp_pending_token_finalize(pending, ones, sizeof ones, buf, sizeof buf, &len),
              PP_ERR_VERIFICATION_FAILED);

    /* Challenges: empty issuer name, a redemption context of the wrong length, bad encodings. */
    EXPECT_RC(pp_challenge_encode(2, "", 0, NULL, 0, NULL, 0, buf, sizeof buf, &len),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_challenge_encode(2, "issuer.example", 14, bad, 5, NULL, 0, buf, sizeof buf, &len),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_challenge_www_authenticate(challenge, challenge_len - 1, spki, spki_len, NULL,
                                            header, sizeof header, &len),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_challenge_www_authenticate(challenge, challenge_len, NULL, 0, NULL, header,
                                            sizeof header, &len),
              PP_ERR_INVALID_INPUT);

    /* Keys: not keys, wrong PEM, directories. */
    EXPECT_RC(pp_verifier_new_from_spki(NULL, 0, &vout), PP_ERR_INVALID_KEY);
    memset(bad, 0x30, 300);
    EXPECT_RC(pp_verifier_new_from_spki(bad, 300, &vout), PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_verifier_new_from_pem("no key here", 11, &vout), PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_verifier_new_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                                       56, &vout),
              PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_verifier_new_from_pem("\xff\xfe", 2, &vout), PP_ERR_INVALID_INPUT);
    {
        static const struct {
            const char *json;
            pp_result expected;
        } directories[] = {
            {"{", PP_ERR_INVALID_INPUT},
            {"{}", PP_ERR_INVALID_INPUT},
            {"[]", PP_ERR_INVALID_INPUT},
            {"{\"token-keys\": []}", PP_ERR_INVALID_KEY},
            {"{\"token-keys\": [{\"token-type\": 1, \"token-key\": \"AA\"}]}", PP_ERR_INVALID_KEY},
            {"{\"token-keys\": [{\"token-type\": 2, \"token-key\": \"!!\"}]}", PP_ERR_INVALID_KEY},
            {"{\"token-keys\": [{\"token-type\": 2, \"token-key\": \"AAAA\"}]}", PP_ERR_INVALID_KEY},
            {"{\"token-keys\": [{\"token-type\": \"2\", \"token-key\": \"AA\"}]}", PP_ERR_INVALID_INPUT},
            {"{\"token-keys\": [{\"token-type\": 2}]}", PP_ERR_INVALID_INPUT},
        };
        size_t k;
        for (k = 0; k < sizeof directories / sizeof directories[0]; k++) {
            vout = NULL;
            EXPECT_RC(pp_verifier_new_from_directory(directories[k].json,
                                                     strlen(directories[k].json), &vout),
                      directories[k].expected);
            CHECK(vout == NULL);
        }
        /* not-before that is not a number */
        {
            char key[600], doc[800];
            b64url(spki, spki_len, 0, key);
            sprintf(doc, "{\"token-keys\": [{\"token-type\": 2, \"token-key\": \"%s\", "
                         "\"not-before\": \"0\"}]}", key);
            EXPECT_RC(pp_verifier_new_from_directory(doc, strlen(doc), &vout), PP_ERR_INVALID_INPUT);
            /* the same with a number: fine (unpadded base64url too) */
            sprintf(doc, "{\"token-keys\": [{\"token-type\": 2, \"token-key\": \"%s\", "
                         "\"not-before\": 0}]}", key);
            OK(pp_verifier_new_from_directory(doc, strlen(doc), &vout));
            OK(pp_verifier_verify(vout, token, sizeof token, NULL, 0));
            pp_verifier_free(vout);
        }
    }
    {
        pp_issuer *no_issuer = NULL;
        pp_client *no_client = NULL;
        EXPECT_RC(pp_issuer_new_from_pem(NULL, 0, &no_issuer), PP_ERR_INVALID_KEY);
        EXPECT_RC(pp_client_new(vector_pk->data, 100, &no_client), PP_ERR_INVALID_KEY);
        CHECK(no_issuer == NULL && no_client == NULL);
    }

    /* Store URLs. */
    EXPECT_RC(pp_redeemer_new(verifier, "memory:lots", &rout), PP_ERR_INVALID_STORE_URL);
    EXPECT_RC(pp_redeemer_new(verifier, "", &rout), PP_ERR_INVALID_STORE_URL);
    EXPECT_RC(pp_redeemer_new(verifier, "postgres://x", &rout), PP_ERR_INVALID_STORE_URL);

    /* A full memory store refuses new spends rather than forgetting old ones. */
    {
        uint8_t t2[PP_TOKEN_LEN];
        OK(pp_redeemer_new(verifier, "memory:1", &rout));
        make_token(issuer, challenge, challenge_len, t2);
        OK(pp_redeemer_redeem(rout, token, sizeof token, NULL, 0));
        EXPECT_RC(pp_redeemer_redeem(rout, t2, sizeof t2, NULL, 0), PP_ERR_STORE_UNAVAILABLE);
        EXPECT_RC(pp_redeemer_redeem(rout, token, sizeof token, NULL, 0), PP_ERR_ALREADY_SPENT);
        pp_redeemer_free(rout);
    }

    pp_pending_token_free(pending);
    pp_client_free(client);
    pp_redeemer_free(redeemer);
    pp_verifier_free(verifier);
}

/* What a service that spends its tokens through privacypassd asks of the library instead of
 * parsing it itself (the nginx module does): the RFC 9578 form of a key, the keys of a key file,
 * a token's fields, and what the daemon's answer to a redeem call says. */
static void test_keys_tokens_and_redeem_answers(const pp_issuer *issuer) {
    /* rsaEncryption's SubjectPublicKeyInfo header for RSA-2048; the RSAPublicKey after it ends
     * the RSASSA-PSS form, whose header is 72 bytes */
    static const uint8_t rsa_prefix[24] = {0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09,
                                           0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
                                           0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00};
    const bytes *token = get(&vectors[0], "token"), *challenge = get(&vectors[0], "token_challenge");
    uint8_t spki[PP_PUBLIC_KEY_LEN], plain[24 + PP_PUBLIC_KEY_LEN - 72], buf[4 * PP_PUBLIC_KEY_LEN];
    uint8_t key_id[PP_TOKEN_KEY_ID_LEN], tampered[PP_TOKEN_LEN];
    bytes plain_bytes, spki_bytes;
    size_t spki_len = 0, len = 0, k;
    char *pem, *plain_pem, *json, *two;

    OK(pp_issuer_public_key(issuer, spki, sizeof spki, &spki_len));
    REQUIRE(spki_len == PP_PUBLIC_KEY_LEN);
    memcpy(plain, rsa_prefix, sizeof rsa_prefix);
    memcpy(plain + sizeof rsa_prefix, spki + 72, PP_PUBLIC_KEY_LEN - 72);
    plain_bytes.data = plain;
    plain_bytes.len = sizeof plain;
    spki_bytes.data = spki;
    spki_bytes.len = spki_len;

    /* One key, DER or PEM, either form: the RSASSA-PSS form. */
    pem = spki_pem(&spki_bytes, 0);
    plain_pem = spki_pem(&plain_bytes, 0);
    OK(pp_public_key_spki(spki, spki_len, buf, sizeof buf, &len));
    CHECK(len == PP_PUBLIC_KEY_LEN && memcmp(buf, spki, len) == 0);
    memset(buf, 0, sizeof buf);
    OK(pp_public_key_spki(plain, sizeof plain, buf, sizeof buf, &len));
    CHECK(len == PP_PUBLIC_KEY_LEN && memcmp(buf, spki, len) == 0);
    memset(buf, 0, sizeof buf);
    OK(pp_public_key_spki((const uint8_t *)plain_pem, strlen(plain_pem), buf, sizeof buf, &len));
    CHECK(len == PP_PUBLIC_KEY_LEN && memcmp(buf, spki, len) == 0);
    len = 0;
    EXPECT_RC(pp_public_key_spki(plain, sizeof plain, buf, PP_PUBLIC_KEY_LEN - 1, &len),
              PP_ERR_BUFFER_TOO_SMALL);
    CHECK(len == PP_PUBLIC_KEY_LEN);
    EXPECT_RC(pp_public_key_spki(plain, sizeof plain - 1, buf, sizeof buf, &len),
              PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_public_key_spki((const uint8_t *)"no key", 6, buf, sizeof buf, &len),
              PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_public_key_spki(NULL, 1, buf, sizeof buf, &len), PP_ERR_NULL_ARGUMENT);

    /* Key files: the type 2 keys a verifier made from them verifies with, each once. */
    json = directory_json(&spki_bytes, 1700000000ULL);
    len = 0;
    EXPECT_RC(pp_directory_public_keys(json, strlen(json), NULL, 0, &len), PP_ERR_BUFFER_TOO_SMALL);
    CHECK(len == PP_PUBLIC_KEY_LEN);
    memset(buf, 0, sizeof buf);
    OK(pp_directory_public_keys(json, strlen(json), buf, sizeof buf, &len));
    CHECK(len == PP_PUBLIC_KEY_LEN && memcmp(buf, spki, len) == 0);
    EXPECT_RC(pp_directory_public_keys("{\"token-keys\": []}", 18, buf, sizeof buf, &len),
              PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_directory_public_keys("{\"token-keys\": [{\"token-type\": 2, \"token-key\": \"!!\"}]}",
                                       54, buf, sizeof buf, &len),
              PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_directory_public_keys("[]", 2, buf, sizeof buf, &len), PP_ERR_INVALID_INPUT);
    two = malloc(strlen(pem) + strlen(plain_pem) + 64);
    REQUIRE(two != NULL);
    sprintf(two, "# the issuer's key, twice\n%s%s", plain_pem, pem);
    memset(buf, 0, sizeof buf);
    OK(pp_pem_public_keys(two, strlen(two), buf, sizeof buf, &len));
    CHECK(len == PP_PUBLIC_KEY_LEN && memcmp(buf, spki, len) == 0);
    EXPECT_RC(pp_pem_public_keys("no key here", 11, buf, sizeof buf, &len), PP_ERR_INVALID_KEY);
    EXPECT_RC(pp_pem_public_keys("\xff\xfe", 2, buf, sizeof buf, &len), PP_ERR_INVALID_INPUT);

    /* A token's fields, read where RFC 9577 puts them; nothing but a type 2 token is read. */
    OK(pp_token_challenge_digest(token->data, token->len, buf, sizeof buf, &len));
    CHECK(len == 32 && memcmp(buf, token->data + 2 + PP_NONCE_LEN, 32) == 0);
    OK(pp_issuer_token_key_id(issuer, key_id, sizeof key_id, &len));
    memset(buf, 0, sizeof buf);
    OK(pp_token_key_id(token->data, token->len, buf, sizeof buf, &len));
    CHECK(len == PP_TOKEN_KEY_ID_LEN && memcmp(buf, key_id, len) == 0);
    EXPECT_RC(pp_token_key_id(token->data, token->len, buf, PP_TOKEN_KEY_ID_LEN - 1, &len),
              PP_ERR_BUFFER_TOO_SMALL);
    EXPECT_RC(pp_token_key_id(token->data, token->len - 1, buf, sizeof buf, &len),
              PP_ERR_INVALID_PARAMS);
    EXPECT_RC(pp_token_challenge_digest(challenge->data, challenge->len, buf, sizeof buf, &len),
              PP_ERR_INVALID_PARAMS);
    memcpy(tampered, token->data, PP_TOKEN_LEN);
    tampered[1] = 0x07;
    EXPECT_RC(pp_token_challenge_digest(tampered, sizeof tampered, buf, sizeof buf, &len),
              PP_ERR_UNSUPPORTED_TOKEN);

    /* The daemon's answer to one redeem call: success only as a 200 with the result "success";
     * an error of the table as itself; anything else as the store being unavailable. */
    {
        static const struct {
            int status;
            const char *body;
            pp_result expected;
        } answers[] = {
            {200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"success\"}", PP_OK},
            {503, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"success\"}", PP_ERR_STORE_UNAVAILABLE},
            {0, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"success\"}", PP_ERR_STORE_UNAVAILABLE},
            {200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"success\",\"error\":{\"code\":-32021}}",
             PP_ERR_STORE_UNAVAILABLE},
            {200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"failed\",\"note\":\"success\"}",
             PP_ERR_STORE_UNAVAILABLE},
            {200, "<html>\"success\"</html>", PP_ERR_STORE_UNAVAILABLE},
            {200, "", PP_ERR_STORE_UNAVAILABLE},
            {403, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32021,\"message\":\"spent\"}}",
             PP_ERR_ALREADY_SPENT},
            {200, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32021,\"message\":\"spent\"}}",
             PP_ERR_ALREADY_SPENT},
            {403, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32020}}",
             PP_ERR_VERIFICATION_FAILED},
            {400, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602}}", PP_ERR_INVALID_PARAMS},
            {503, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32050}}",
             PP_ERR_STORE_UNAVAILABLE},
            {502, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32021}}",
             PP_ERR_STORE_UNAVAILABLE},
            {403, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-320210}}",
             PP_ERR_STORE_UNAVAILABLE},
            {403, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"-32021\"}}",
             PP_ERR_STORE_UNAVAILABLE},
        };
        for (k = 0; k < sizeof answers / sizeof answers[0]; k++) {
            const char *body = answers[k].body;
            int rc = (int)pp_redeem_response_result(answers[k].status, (const uint8_t *)body,
                                                    strlen(body));
            if (rc != (int)answers[k].expected) {
                fprintf(stderr, "  answer %zu (%d %s): %s\n", k, answers[k].status, body,
                        pp_result_str(rc));
            }
            CHECK(rc == (int)answers[k].expected);
        }
        EXPECT_RC(pp_redeem_response_result(200, NULL, 0), PP_ERR_STORE_UNAVAILABLE);
        EXPECT_RC(pp_redeem_response_result(200, NULL, 5), PP_ERR_NULL_ARGUMENT);
    }

    free(two);
    free(json);
    free(plain_pem);
    free(pem);
}

/* ---------------------------------------------------------------------------------------- */
/* Keys from a refreshed directory                                                             */

/* What a host following its issuer's directory does: each new body read into a verifier, the
 * verifier's keys swapped into a long-lived redeemer, the challenge key chosen by not-before. */
static void test_directory_refresh(const pp_issuer *issuer) {
    uint8_t challenge[256];
    uint8_t spki_a[PP_PUBLIC_KEY_LEN], spki_b[PP_PUBLIC_KEY_LEN], keys[3 * PP_PUBLIC_KEY_LEN];
    uint8_t a1[PP_TOKEN_LEN], a2[PP_TOKEN_LEN], b1[PP_TOKEN_LEN];
    char b64_a[2 * PP_PUBLIC_KEY_LEN], b64_b[2 * PP_PUBLIC_KEY_LEN], json[8 * PP_PUBLIC_KEY_LEN];
    uint64_t starts[4] = {7, 7, 7, 7};
    size_t len = 0;
    pp_issuer *other = NULL, *voprf = NULL;
    pp_verifier *only_a = NULL, *only_b = NULL, *both = NULL;
    pp_redeemer *redeemer = NULL, *private_redeemer = NULL;
    size_t challenge_len = encode_challenge("issuer.example", NULL, 0, "origin.example", challenge,
                                            sizeof challenge);

    OK(pp_issuer_generate(&other));
    REQUIRE(other != NULL);
    OK(pp_issuer_public_key(issuer, spki_a, sizeof spki_a, &len));
    OK(pp_issuer_public_key(other, spki_b, sizeof spki_b, &len));
    b64url(spki_a, sizeof spki_a, 1, b64_a);
    b64url(spki_b, sizeof spki_b, 1, b64_b);
    make_token(issuer, challenge, challenge_len, a1);
    make_token(issuer, challenge, challenge_len, a2);
    make_token(other, challenge, challenge_len, b1);

    /* A rotating issuer's directory: the next key first with its start, then the issuing one;
     * the next key listed once more counts once, at its first listing. */
    snprintf(json, sizeof json,
             "{\"issuer-request-uri\": \"/token-request\", \"token-keys\": [\n"
             " {\"token-type\": 2, \"token-key\": \"%s\", \"not-before\": 4000000000},\n"
             " {\"token-type\": 2, \"token-key\": \"%s\", \"not-before\": 1700000000},\n"
             " {\"token-type\": 2, \"token-key\": \"%s\", \"not-before\": 5}]}",
             b64_b, b64_a, b64_b);
    EXPECT_RC(pp_directory_not_before(json, strlen(json), PP_TOKEN_TYPE_BLIND_RSA, NULL, 0, &len),
              PP_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 2);
    EXPECT_RC(pp_directory_not_before(json, strlen(json), PP_TOKEN_TYPE_BLIND_RSA, starts, 1, &len),
              PP_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 2 && starts[0] == 7);
    OK(pp_directory_not_before(json, strlen(json), PP_TOKEN_TYPE_BLIND_RSA, starts, 4, &len));
    CHECK(len == 2 && starts[0] == 4000000000ULL && starts[1] == 1700000000ULL && starts[2] == 7);
    OK(pp_directory_token_keys(json, strlen(json), PP_TOKEN_TYPE_BLIND_RSA, keys, sizeof keys, &len));
    CHECK(len == 2 * PP_PUBLIC_KEY_LEN && memcmp(keys, spki_b, PP_PUBLIC_KEY_LEN) == 0 &&
          memcmp(keys + PP_PUBLIC_KEY_LEN, spki_a, PP_PUBLIC_KEY_LEN) == 0);
    OK(pp_directory_not_before(json, strlen(json), PP_TOKEN_TYPE_VOPRF_RISTRETTO255, starts, 4, &len));
    CHECK(len == 0);
    EXPECT_RC(pp_directory_not_before(json, strlen(json), 3, starts, 4, &len), PP_ERR_UNSUPPORTED_TOKEN);
    EXPECT_RC(pp_directory_not_before(json, strlen(json), PP_TOKEN_TYPE_BLIND_RSA, starts, 4, NULL),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_directory_not_before(json, strlen(json), PP_TOKEN_TYPE_BLIND_RSA, NULL, 4, &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_directory_not_before("[]", 2, PP_TOKEN_TYPE_BLIND_RSA, starts, 4, &len),
              PP_ERR_INVALID_INPUT);
    /* The verifier of that body: the pending key verifies nothing before its start. */
    OK(pp_verifier_new_from_directory(json, strlen(json), &both));
    OK(pp_verifier_verify(both, a1, sizeof a1, challenge, challenge_len));
    EXPECT_RC(pp_verifier_verify(both, b1, sizeof b1, challenge, challenge_len),
              PP_ERR_VERIFICATION_FAILED);
    pp_verifier_free(both);
    both = NULL;

    /* Swapping keys into a live redeemer: one set or the other, the spends kept. */
    snprintf(json, sizeof json, "{\"token-keys\": [{\"token-type\": 2, \"token-key\": \"%s\"}]}",
             b64_a);
    OK(pp_verifier_new_from_directory(json, strlen(json), &only_a));
    snprintf(json, sizeof json, "{\"token-keys\": [{\"token-type\": 2, \"token-key\": \"%s\"}]}",
             b64_b);
    OK(pp_verifier_new_from_directory(json, strlen(json), &only_b));
    snprintf(json, sizeof json,
             "{\"token-keys\": [{\"token-type\": 2, \"token-key\": \"%s\"},"
             " {\"token-type\": 2, \"token-key\": \"%s\"}]}",
             b64_b, b64_a);
    OK(pp_verifier_new_from_directory(json, strlen(json), &both));
    OK(pp_redeemer_new(only_a, "memory:", &redeemer));
    REQUIRE(redeemer != NULL);
    OK(pp_redeemer_redeem(redeemer, a1, sizeof a1, challenge, challenge_len));
    EXPECT_RC(pp_redeemer_redeem(redeemer, b1, sizeof b1, NULL, 0), PP_ERR_VERIFICATION_FAILED);
    OK(pp_redeemer_set_keys(redeemer, only_b));
    pp_verifier_free(only_b); /* the redeemer keeps its own reference */
    OK(pp_redeemer_redeem(redeemer, b1, sizeof b1, NULL, 0));
    EXPECT_RC(pp_redeemer_redeem(redeemer, a2, sizeof a2, NULL, 0), PP_ERR_VERIFICATION_FAILED);
    OK(pp_redeemer_set_keys(redeemer, both));
    EXPECT_RC(pp_redeemer_redeem(redeemer, a1, sizeof a1, NULL, 0), PP_ERR_ALREADY_SPENT);
    EXPECT_RC(pp_redeemer_redeem(redeemer, b1, sizeof b1, NULL, 0), PP_ERR_ALREADY_SPENT);
    OK(pp_redeemer_redeem(redeemer, a2, sizeof a2, NULL, 0));
    EXPECT_RC(pp_redeemer_set_keys(NULL, both), PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_redeemer_set_keys(redeemer, NULL), PP_ERR_NULL_ARGUMENT);
    /* A VOPRF issuer's redeemer verifies with its private key, which public keys cannot
     * replace: refused, and it keeps its key. */
    OK(pp_issuer_generate_voprf(PP_TOKEN_TYPE_VOPRF_RISTRETTO255, &voprf));
    OK(pp_redeemer_new_from_issuer(voprf, "memory:", &private_redeemer));
    EXPECT_RC(pp_redeemer_set_keys(private_redeemer, both), PP_ERR_INVALID_KEY);

    pp_redeemer_free(private_redeemer);
    pp_issuer_free(voprf);
    pp_redeemer_free(redeemer);
    pp_verifier_free(both);
    pp_verifier_free(only_a);
    pp_issuer_free(other);
}

/* ---------------------------------------------------------------------------------------- */
/* Threads and fork                                                                           */

#define THREADS 8
#define TOKENS_PER_THREAD 4
#define VERIFIES_PER_THREAD 25

typedef struct {
    const pp_verifier *verifier;
    const pp_redeemer *redeemer;
    const uint8_t *challenge;
    size_t challenge_len;
    const uint8_t (*tokens)[PP_TOKEN_LEN]; /* THREADS * TOKENS_PER_THREAD */
    const uint8_t *shared_token;
    int index;
    int verified, rejected, redeemed, already_spent, errors;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    uint8_t tampered[PP_TOKEN_LEN];
    int i;
    memcpy(tampered, w->tokens[0], PP_TOKEN_LEN);
    tampered[200] ^= 0x80;
    for (i = 0; i < VERIFIES_PER_THREAD; i++) {
        const uint8_t *t = w->tokens[(w->index + i) % (THREADS * TOKENS_PER_THREAD)];
        if (pp_verifier_verify(w->verifier, t, PP_TOKEN_LEN, w->challenge, w->challenge_len) == PP_OK)
            w->verified++;
        else
            w->errors++;
        if (i % 5 == 0) {
            if (pp_verifier_verify(w->verifier, tampered, PP_TOKEN_LEN, NULL, 0) ==
                PP_ERR_VERIFICATION_FAILED)
                w->rejected++;
            else
                w->errors++;
        }
    }
    /* Every thread redeems its own tokens, then all race on the shared one. */
    for (i = 0; i < TOKENS_PER_THREAD; i++) {
        const uint8_t *t = w->tokens[w->index * TOKENS_PER_THREAD + i];
        if (pp_redeemer_redeem(w->redeemer, t, PP_TOKEN_LEN, w->challenge, w->challenge_len) == PP_OK)
            w->redeemed++;
        else
            w->errors++;
    }
    switch (pp_redeemer_redeem(w->redeemer, w->shared_token, PP_TOKEN_LEN, NULL, 0)) {
    case PP_OK:
        w->redeemed++;
        break;
    case PP_ERR_ALREADY_SPENT:
        w->already_spent++;
        break;
    default:
        w->errors++;
    }
    return NULL;
}

static void test_threads(const pp_issuer *issuer) {
    static uint8_t tokens[THREADS * TOKENS_PER_THREAD][PP_TOKEN_LEN];
    uint8_t spki[PP_PUBLIC_KEY_LEN], challenge[64], shared[PP_TOKEN_LEN];
    size_t spki_len = 0, challenge_len;
    pp_verifier *verifier = NULL;
    pp_redeemer *redeemer = NULL;
    pthread_t threads[THREADS];
    worker workers[THREADS];
    int i, verified = 0, rejected = 0, redeemed = 0, already = 0, errors = 0;

    OK(pp_issuer_public_key(issuer, spki, sizeof spki, &spki_len));
    challenge_len = encode_challenge("issuer.example", NULL, 0, NULL, challenge, sizeof challenge);
    for (i = 0; i < THREADS * TOKENS_PER_THREAD; i++) {
        make_token(issuer, challenge, challenge_len, tokens[i]);
    }
    make_token(issuer, challenge, challenge_len, shared);
    OK(pp_verifier_new_from_spki(spki, spki_len, &verifier));
    OK(pp_redeemer_new(verifier, "memory:", &redeemer));

    for (i = 0; i < THREADS; i++) {
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].verifier = verifier;
        workers[i].redeemer = redeemer;
        workers[i].challenge = challenge;
        workers[i].challenge_len = challenge_len;
        workers[i].tokens = (const uint8_t(*)[PP_TOKEN_LEN])tokens;
        workers[i].shared_token = shared;
        workers[i].index = i;
        REQUIRE(pthread_create(&threads[i], NULL, work, &workers[i]) == 0);
    }
    for (i = 0; i < THREADS; i++) {
        REQUIRE(pthread_join(threads[i], NULL) == 0);
        verified += workers[i].verified;
        rejected += workers[i].rejected;
        redeemed += workers[i].redeemed;
        already += workers[i].already_spent;
        errors += workers[i].errors;
    }
    fprintf(stderr, "  %d threads: %d verified, %d rejected, %d redeemed, %d already spent\n",
            THREADS, verified, rejected, redeemed, already);
    CHECK(errors == 0);
    CHECK(verified == THREADS * VERIFIES_PER_THREAD);
    CHECK(rejected == THREADS * ((VERIFIES_PER_THREAD + 4) / 5));
    CHECK(redeemed == THREADS * TOKENS_PER_THREAD + 1); /* the shared token: exactly once */
    CHECK(already == THREADS - 1);
    pp_redeemer_free(redeemer);
    pp_verifier_free(verifier);
}

/* Verifiers, issuers and clients made before fork() work in the child, and randomness is the
 * OS's: parent and child draw different nonces after the fork (a generator state copied by
 * fork() would repeat them). */
static void test_fork(const pp_issuer *issuer) {
    uint8_t spki[PP_PUBLIC_KEY_LEN], challenge[64], mine[PP_TOKEN_LEN], theirs[PP_TOKEN_LEN];
    size_t spki_len = 0, challenge_len, got = 0;
    pp_verifier *verifier = NULL;
    pid_t pid;
    int status = 0, fds[2];
    OK(pp_issuer_public_key(issuer, spki, sizeof spki, &spki_len));
    OK(pp_verifier_new_from_spki(spki, spki_len, &verifier));
    challenge_len = encode_challenge("issuer.example", NULL, 0, NULL, challenge, sizeof challenge);
    /* Draw once before the fork, so any generator the process keeps is seeded and copied. */
    make_token(issuer, challenge, challenge_len, mine);
    REQUIRE(pipe(fds) == 0);
    fflush(stderr);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        uint8_t a[PP_TOKEN_LEN], b[PP_TOKEN_LEN];
        int before = failures;
        close(fds[0]);
        make_token(issuer, challenge, challenge_len, a);
        make_token(issuer, challenge, challenge_len, b);
        OK(pp_verifier_verify(verifier, a, sizeof a, challenge, challenge_len));
        OK(pp_verifier_verify(verifier, b, sizeof b, challenge, challenge_len));
        CHECK(memcmp(a + 2, b + 2, PP_NONCE_LEN) != 0); /* fresh nonces */
        CHECK(write(fds[1], a, sizeof a) == (ssize_t)sizeof a);
        close(fds[1]);
        pp_verifier_free(verifier);
        free_vectors();
        pp_issuer_free((pp_issuer *)issuer);
        _exit(failures == before ? 0 : 1);
    }
    close(fds[1]);
    make_token(issuer, challenge, challenge_len, mine);
    while (got < sizeof theirs) {
        ssize_t n = read(fds[0], theirs + got, sizeof theirs - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fds[0]);
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(got == sizeof theirs);
    /* The first token each side made after the fork: nonce and authenticator differ. */
    CHECK(memcmp(mine + 2, theirs + 2, PP_NONCE_LEN) != 0);
    CHECK(memcmp(mine + PP_TOKEN_LEN - 256, theirs + PP_TOKEN_LEN - 256, 256) != 0);
    pp_verifier_free(verifier);
}

/* A memory: redeemer holds the spends of the process that made it. After fork() the child holds
 * a copy, which would accept every token once more: there it refuses each redeem with
 * PP_ERR_STORE_UNAVAILABLE, while the parent's keeps working. A redeemer the child opens itself
 * is its own. */
static void test_fork_memory_redeemer(const pp_issuer *issuer) {
    uint8_t spki[PP_PUBLIC_KEY_LEN], challenge[64], spent[PP_TOKEN_LEN], fresh[PP_TOKEN_LEN];
    size_t spki_len = 0, challenge_len;
    pp_verifier *verifier = NULL;
    pp_redeemer *redeemer = NULL;
    pid_t pid;
    int status = 0;
    OK(pp_issuer_public_key(issuer, spki, sizeof spki, &spki_len));
    OK(pp_verifier_new_from_spki(spki, spki_len, &verifier));
    challenge_len = encode_challenge("issuer.example", NULL, 0, NULL, challenge, sizeof challenge);
    make_token(issuer, challenge, challenge_len, spent);
    make_token(issuer, challenge, challenge_len, fresh);
    OK(pp_redeemer_new(verifier, "memory:", &redeemer));
    OK(pp_redeemer_redeem(redeemer, spent, sizeof spent, challenge, challenge_len));
    fflush(stderr);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        pp_redeemer *own = NULL;
        int before = failures;
        EXPECT_RC(pp_redeemer_redeem(redeemer, spent, sizeof spent, challenge, challenge_len),
                  PP_ERR_STORE_UNAVAILABLE);
        EXPECT_RC(pp_redeemer_redeem(redeemer, fresh, sizeof fresh, challenge, challenge_len),
                  PP_ERR_STORE_UNAVAILABLE);
        /* Verification needs no store: it works in the child. */
        OK(pp_verifier_verify(verifier, fresh, sizeof fresh, challenge, challenge_len));
        OK(pp_redeemer_new(verifier, "memory:", &own));
        OK(pp_redeemer_redeem(own, fresh, sizeof fresh, challenge, challenge_len));
        EXPECT_RC(pp_redeemer_redeem(own, fresh, sizeof fresh, challenge, challenge_len),
                  PP_ERR_ALREADY_SPENT);
        pp_redeemer_free(own);
        pp_redeemer_free(redeemer);
        pp_verifier_free(verifier);
        free_vectors();
        pp_issuer_free((pp_issuer *)issuer);
        _exit(failures == before ? 0 : 1);
    }
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The parent's spends are the parent's: nothing the child did reached them. */
    EXPECT_RC(pp_redeemer_redeem(redeemer, spent, sizeof spent, challenge, challenge_len),
              PP_ERR_ALREADY_SPENT);
    OK(pp_redeemer_redeem(redeemer, fresh, sizeof fresh, challenge, challenge_len));
    EXPECT_RC(pp_redeemer_redeem(redeemer, fresh, sizeof fresh, challenge, challenge_len),
              PP_ERR_ALREADY_SPENT);
    pp_redeemer_free(redeemer);
    pp_verifier_free(verifier);
}

int main(int argc, char **argv) {
    pp_issuer *issuer = NULL;
    const bytes *sk;
    if (argc != 3) {
        fprintf(stderr, "usage: %s VECTORS.json SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    load_vectors(argv[1]);
    REQUIRE(vector_count > 0);
    /* One issuer for the protocol tests: the first vector's key (no key generation, which is
     * slow under valgrind). */
    sk = get(&vectors[0], "skS");
    OK(pp_issuer_new_from_pem((const char *)sk->data, sk->len, &issuer));
    REQUIRE(issuer != NULL);

    fprintf(stderr, "version and result codes\n");
    test_version_and_codes();
    fprintf(stderr, "RFC 9578 type 2 vectors\n");
    test_vectors();
    /* Before any rocksdb: store exists: RocksDB's global background threads, which fork()
     * does not copy, would show up as leaks in the child under valgrind. */
    fprintf(stderr, "fork\n");
    test_fork(issuer);
    fprintf(stderr, "fork with a memory: redeemer\n");
    test_fork_memory_redeemer(issuer);
    fprintf(stderr, "issue -> finalize -> verify -> redeem -> double spend\n");
    test_cycles(issuer, argv[2]);
    fprintf(stderr, "NULL arguments and buffers\n");
    test_null_and_buffer_errors(issuer);
    fprintf(stderr, "protocol errors\n");
    test_protocol_errors(issuer);
    fprintf(stderr, "keys, token fields and redeem answers\n");
    test_keys_tokens_and_redeem_answers(issuer);
    fprintf(stderr, "keys from a refreshed directory\n");
    test_directory_refresh(issuer);
    fprintf(stderr, "threads\n");
    test_threads(issuer);

    pp_issuer_free(issuer);
    free_vectors();
    if (failures) {
        fprintf(stderr, "FAILED: %d of %d checks\n", failures, checks);
        return 1;
    }
    fprintf(stderr, "OK: %d checks\n", checks);
    return 0;
}
