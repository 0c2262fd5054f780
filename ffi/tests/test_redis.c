/*
 * libprivacypass's redeemer on a shared Redis store, tested from C against a real redis-server:
 * two redeemer handles stand for two hosts sharing one store; a token redeemed on one is spent
 * on the other, 8 threads racing on one token over both handles get exactly one success, a
 * redeemer made before fork() works in the child, and bad or unreachable stores answer their
 * result codes.
 *
 * Built by `make ffi-test-redis` with -std=c99 -Wall -Wextra -Werror and ASan/UBSan; the target
 * starts redis-server on a free port in a temporary directory and stops it afterwards.
 *
 * usage: test_redis PORT    (a redis-server listening on 127.0.0.1:PORT, database 0 empty)
 */
#define _POSIX_C_SOURCE 200809L

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

static pp_issuer *issuer;
static uint8_t challenge[128];
static size_t challenge_len;

static int redeem(const pp_redeemer *redeemer, const uint8_t token[PP_TOKEN_LEN]) {
    return pp_redeemer_redeem(redeemer, token, PP_TOKEN_LEN, challenge, challenge_len);
}

/* ---------------------------------------------------------------------------------------- */

#define THREADS 8

typedef struct {
    const pp_redeemer *redeemer;
    const uint8_t *token;
    pthread_barrier_t *start;
    int result;
} racer;

static void *race(void *arg) {
    racer *r = arg;
    pthread_barrier_wait(r->start);
    r->result = redeem(r->redeemer, r->token);
    return NULL;
}

/* THREADS threads redeem one token at once, half on each host: exactly one success. */
static void test_race(const pp_redeemer *host_a, const pp_redeemer *host_b) {
    uint8_t token[PP_TOKEN_LEN];
    pthread_t threads[THREADS];
    racer racers[THREADS];
    pthread_barrier_t start;
    int i, successes = 0, spent = 0;
    make_token(issuer, challenge, challenge_len, token);
    REQUIRE(pthread_barrier_init(&start, NULL, THREADS) == 0);
    for (i = 0; i < THREADS; i++) {
        racers[i].redeemer = i % 2 ? host_b : host_a;
        racers[i].token = token;
        racers[i].start = &start;
        racers[i].result = -1;
        REQUIRE(pthread_create(&threads[i], NULL, race, &racers[i]) == 0);
    }
    for (i = 0; i < THREADS; i++) {
        REQUIRE(pthread_join(threads[i], NULL) == 0);
        successes += racers[i].result == PP_OK;
        spent += racers[i].result == PP_ERR_ALREADY_SPENT;
    }
    pthread_barrier_destroy(&start);
    CHECK(successes == 1);
    CHECK(spent == THREADS - 1);
}

/* A redeemer that has connected before fork() serves the child and, after it, the parent. */
static void test_fork(const pp_redeemer *host_a, const pp_redeemer *host_b) {
    uint8_t before[PP_TOKEN_LEN], in_child[PP_TOKEN_LEN], after[PP_TOKEN_LEN];
    pid_t pid;
    int status = 0;
    make_token(issuer, challenge, challenge_len, before);
    make_token(issuer, challenge, challenge_len, in_child);
    make_token(issuer, challenge, challenge_len, after);
    OK(redeem(host_a, before)); /* host_a now holds a live connection */
    fflush(stderr);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int ok = redeem(host_a, in_child) == PP_OK &&
                 redeem(host_a, before) == PP_ERR_ALREADY_SPENT;
        _exit(ok ? 0 : 1);
    }
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_RC(redeem(host_b, in_child), PP_ERR_ALREADY_SPENT);
    OK(redeem(host_a, after));
    EXPECT_RC(redeem(host_b, after), PP_ERR_ALREADY_SPENT);
}

int main(int argc, char **argv) {
    uint8_t spki[PP_PUBLIC_KEY_LEN], first[PP_TOKEN_LEN], second[PP_TOKEN_LEN];
    size_t spki_len = 0;
    char url[128];
    pp_verifier *verifier = NULL;
    pp_redeemer *host_a = NULL, *host_b = NULL, *bad = NULL;
    if (argc != 2 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    snprintf(url, sizeof url, "redis://127.0.0.1:%s/0", argv[1]);

    OK(pp_issuer_generate(&issuer));
    REQUIRE(issuer != NULL);
    OK(pp_challenge_encode(PP_TOKEN_TYPE_BLIND_RSA, "issuer.example", 14, NULL, 0,
                           "origin.example", 14, challenge, sizeof challenge, &challenge_len));
    OK(pp_issuer_public_key(issuer, spki, sizeof spki, &spki_len));
    OK(pp_verifier_new_from_spki(spki, spki_len, &verifier));

    fprintf(stderr, "two hosts on %s\n", url);
    OK(pp_redeemer_new(verifier, url, &host_a));
    OK(pp_redeemer_new(verifier, url, &host_b));
    REQUIRE(host_a != NULL && host_b != NULL);
    make_token(issuer, challenge, challenge_len, first);
    make_token(issuer, challenge, challenge_len, second);
    OK(redeem(host_a, first));
    EXPECT_RC(redeem(host_b, first), PP_ERR_ALREADY_SPENT);
    EXPECT_RC(redeem(host_a, first), PP_ERR_ALREADY_SPENT);
    OK(redeem(host_b, second));
    EXPECT_RC(redeem(host_a, second), PP_ERR_ALREADY_SPENT);

    fprintf(stderr, "%d threads racing on one token over both hosts\n", THREADS);
    test_race(host_a, host_b);
    fprintf(stderr, "fork\n");
    test_fork(host_a, host_b);

    fprintf(stderr, "bad and unreachable stores\n");
    snprintf(url, sizeof url, "redis://127.0.0.1:%s/0?pool=0", argv[1]);
    EXPECT_RC(pp_redeemer_new(verifier, url, &bad), PP_ERR_INVALID_STORE_URL);
    EXPECT_RC(pp_redeemer_new(verifier, "redis://127.0.0.1:99999/0", &bad),
              PP_ERR_INVALID_STORE_URL);
    EXPECT_RC(pp_redeemer_new(verifier, "redis://127.0.0.1:1/0?timeout_ms=500", &bad),
              PP_ERR_STORE_UNAVAILABLE);
    CHECK(bad == NULL);

    pp_redeemer_free(host_a);
    pp_redeemer_free(host_b);
    pp_verifier_free(verifier);
    pp_issuer_free(issuer);
    if (failures) {
        fprintf(stderr, "FAILED: %d of %d checks\n", failures, checks);
        return 1;
    }
    fprintf(stderr, "OK: %d checks\n", checks);
    return 0;
}
