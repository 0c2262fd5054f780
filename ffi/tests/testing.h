/*
 * What the C tests of libprivacypass share: check counters and macros that name the result
 * codes on failure, and a fresh token through the client and issuer API.
 */
#ifndef PP_TESTING_H
#define PP_TESTING_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "privacypass.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        checks++;                                                                    \
        if (!(cond)) {                                                               \
            failures++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* Checks a call's result code, naming both codes on failure. */
#define EXPECT_RC(call, expected)                                                          \
    do {                                                                                   \
        int rc_ = (int)(call);                                                             \
        checks++;                                                                          \
        if (rc_ != (int)(expected)) {                                                      \
            failures++;                                                                    \
            fprintf(stderr, "%s:%d: %s\n    returned %d (%s), expected %d (%s)\n", __FILE__, \
                    __LINE__, #call, rc_, pp_result_str(rc_), (int)(expected),             \
                    pp_result_str((int)(expected)));                                       \
        }                                                                                  \
    } while (0)

#define OK(call) EXPECT_RC(call, PP_OK)

/* Stops the run: later checks depend on this one. */
#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(2);                                                         \
        }                                                                    \
    } while (0)

/* A fresh token for `challenge` from `issuer`, through the client API. */
static void make_token(const pp_issuer *issuer, const uint8_t *challenge, size_t challenge_len,
                       uint8_t token[PP_TOKEN_LEN]) {
    uint8_t spki[PP_PUBLIC_KEY_LEN], request[PP_TOKEN_REQUEST_LEN], response[PP_TOKEN_RESPONSE_LEN];
    size_t len = 0;
    pp_client *client = NULL;
    pp_pending_token *pending = NULL;
    OK(pp_issuer_public_key(issuer, spki, sizeof spki, &len));
    OK(pp_client_new(spki, len, &client));
    OK(pp_client_request(client, challenge, challenge_len, &pending));
    OK(pp_pending_token_request(pending, request, sizeof request, &len));
    CHECK(len == PP_TOKEN_REQUEST_LEN);
    OK(pp_issuer_issue(issuer, request, len, response, sizeof response, &len));
    CHECK(len == PP_TOKEN_RESPONSE_LEN);
    OK(pp_pending_token_finalize(pending, response, len, token, PP_TOKEN_LEN, &len));
    CHECK(len == PP_TOKEN_LEN);
    pp_pending_token_free(pending);
    pp_client_free(client);
}

#endif
