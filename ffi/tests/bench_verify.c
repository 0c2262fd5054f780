/*
 * bench_verify: token verifications per second through the C API, one thread, for a fixed time
 * (`make bench-c`). Compare with the core's `crypto/verify` benchmark (`make bench`): the C API
 * adds argument checks and the panic boundary to the same verification.
 *
 * usage: bench_verify [SECONDS]   (default 5)
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "privacypass.h"

#define TRY(call)                                                      \
    do {                                                               \
        pp_result rc_ = (call);                                        \
        if (rc_ != PP_OK) {                                            \
            fprintf(stderr, "%s: %s\n", #call, pp_result_str(rc_));    \
            return 1;                                                  \
        }                                                              \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Verifies in batches of `batch` until `seconds` have passed; returns verifies per second. */
static int run(const pp_verifier *verifier, const uint8_t *token, const uint8_t *challenge,
               size_t challenge_len, double seconds, double *rate) {
    const int batch = 100;
    long count = 0;
    double start = now(), elapsed;
    do {
        int i;
        for (i = 0; i < batch; i++) {
            TRY(pp_verifier_verify(verifier, token, PP_TOKEN_LEN, challenge, challenge_len));
        }
        count += batch;
        elapsed = now() - start;
    } while (elapsed < seconds);
    *rate = (double)count / elapsed;
    return 0;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5.0, rate = 0, unbound_rate = 0;
    pp_issuer *issuer = NULL;
    pp_client *client = NULL;
    pp_pending_token *pending = NULL;
    pp_verifier *verifier = NULL;
    uint8_t key[PP_PUBLIC_KEY_LEN], challenge[64], request[PP_TOKEN_REQUEST_LEN];
    uint8_t response[PP_TOKEN_RESPONSE_LEN], token[PP_TOKEN_LEN];
    size_t key_len, challenge_len, len;

    if (seconds <= 0) seconds = 5.0;
    TRY(pp_issuer_generate(&issuer));
    TRY(pp_issuer_public_key(issuer, key, sizeof key, &key_len));
    TRY(pp_challenge_encode(PP_TOKEN_TYPE_BLIND_RSA, "issuer.example", 14, NULL, 0, NULL, 0,
                            challenge, sizeof challenge, &challenge_len));
    TRY(pp_client_new(key, key_len, &client));
    TRY(pp_client_request(client, challenge, challenge_len, &pending));
    TRY(pp_pending_token_request(pending, request, sizeof request, &len));
    TRY(pp_issuer_issue(issuer, request, len, response, sizeof response, &len));
    TRY(pp_pending_token_finalize(pending, response, len, token, sizeof token, &len));
    TRY(pp_verifier_new_from_spki(key, key_len, &verifier));

    /* Warm up, then measure: without a challenge binding (what the core bench measures), and
     * bound to the challenge. */
    if (run(verifier, token, NULL, 0, 0.5, &rate)) return 1;
    if (run(verifier, token, NULL, 0, seconds, &unbound_rate)) return 1;
    if (run(verifier, token, challenge, challenge_len, seconds, &rate)) return 1;
    printf("libprivacypass %s C API, 1 thread, %.1f s each:\n", pp_version(), seconds);
    printf("  pp_verifier_verify (no challenge):   %10.0f verifies/s  (%.2f us each)\n",
           unbound_rate, 1e6 / unbound_rate);
    printf("  pp_verifier_verify (with challenge): %10.0f verifies/s  (%.2f us each)\n", rate,
           1e6 / rate);

    pp_verifier_free(verifier);
    pp_pending_token_free(pending);
    pp_client_free(client);
    pp_issuer_free(issuer);
    return 0;
}
