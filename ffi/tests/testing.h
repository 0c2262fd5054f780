/*
 * What the C tests of libprivacypass share: check counters and macros that name the result
 * codes on failure, byte buffers from hex, and a fresh token through the client and issuer API.
 */
#ifndef PP_TESTING_H
#define PP_TESTING_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A byte buffer the tests own (free its data). */
typedef struct {
    uint8_t *data;
    size_t len;
} bytes;

static inline int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The n hex digits at hex as bytes, NUL-terminated beyond their length (PEM texts are used as
 * strings too). */
static inline bytes from_hex(const char *hex, size_t n) {
    bytes b;
    size_t i;
    REQUIRE(n % 2 == 0);
    b.len = n / 2;
    b.data = malloc(b.len + 1);
    REQUIRE(b.data != NULL);
    for (i = 0; i < b.len; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        REQUIRE(hi >= 0 && lo >= 0);
        b.data[i] = (uint8_t)(hi * 16 + lo);
    }
    b.data[b.len] = 0;
    return b;
}

static inline int same(const uint8_t *a, size_t alen, const bytes *b) {
    return alen == b->len && memcmp(a, b->data, alen) == 0;
}

/* A fresh token for `challenge` from `issuer`, through the client API. */
static inline void make_token(const pp_issuer *issuer, const uint8_t *challenge, size_t challenge_len,
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

/* Byte buffers and base64. */

static inline void bytes_free(bytes *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

/* base64 of in, in the given 64-character alphabet, into out (NUL-terminated), with or without
 * padding; returns the length. */
static inline size_t b64_alphabet(const uint8_t *in, size_t n, int pad, char *out, const char *alphabet) {
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        if (pad) out[o++] = '=';
    }
    out[o] = 0;
    return o;
}

/* Standard base64 (+/), as PEM carries it. */
static inline size_t b64std(const uint8_t *in, size_t n, int pad, char *out) {
    return b64_alphabet(in, n, pad, out,
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}

/* base64url (-_), as RFC 9577 headers and issuer directories carry it. */
static inline size_t b64url(const uint8_t *in, size_t n, int pad, char *out) {
    return b64_alphabet(in, n, pad, out,
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
}

/* The whole file at `path`, NUL-terminated; its length in *len. Exits when it cannot be read. */
static inline char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long size;
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    REQUIRE(fseek(f, 0, SEEK_END) == 0);
    size = ftell(f);
    REQUIRE(size >= 0);
    REQUIRE(fseek(f, 0, SEEK_SET) == 0);
    buf = malloc((size_t)size + 1);
    REQUIRE(buf != NULL);
    REQUIRE(fread(buf, 1, (size_t)size, f) == (size_t)size);
    buf[size] = 0;
    fclose(f);
    *len = (size_t)size;
    return buf;
}

#endif
