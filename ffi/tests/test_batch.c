/*
 * Batched issuance (draft-ietf-privacypass-batched-tokens) through the C API: the amortized
 * vectors of types 0x0001 and 0x0005 and the generic vectors (types 1, 2 and 5) byte for byte
 * (the client given the vectors' randomness reproduces token_request and finalizes
 * token_response into the vectors' tokens; our issuer's response finalizes into the same
 * tokens; each token redeems once), a fresh-key cycle of each kind, a generic batch one entry
 * of which no issuer serves (the partial answer), and the error paths.
 *
 * Built by `make test-c` with -std=c99 -Wall -Wextra -Werror and ASan/UBSan, and again without
 * sanitizers under valgrind.
 *
 * usage: test_batch AMORTIZED_P384.json AMORTIZED_RISTRETTO255.json GENERIC.json
 *   tests/vectors/batched-amortized_p384_rs.json, batched-amortized_ristretto255_rs.json,
 *   batched-generic_rs.json
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privacypass.h"
#include "testing.h"

/* ---------------------------------------------------------------------------------------- */
/* The vectors: JSON arrays and objects whose leaves are hex strings or null.                */

typedef struct jnode {
    int kind; /* 'n' null, 's' string (its hex decoded), '[' array, '{' object */
    char name[32];
    bytes value;
    struct jnode *items;
    size_t count;
} jnode;

static const char *jtext;
static size_t jpos, jlen;

static void jspace(void) {
    while (jpos < jlen && strchr(" \t\r\n", jtext[jpos]) != NULL) jpos++;
}

static void jparse(jnode *node) {
    char c;
    memset(node, 0, sizeof *node);
    jspace();
    REQUIRE(jpos < jlen);
    c = jtext[jpos];
    if (c == '"') {
        size_t start = ++jpos;
        while (jpos < jlen && jtext[jpos] != '"') jpos++;
        REQUIRE(jpos < jlen);
        node->kind = 's';
        node->value = from_hex(jtext + start, jpos - start);
        jpos++;
    } else if (strncmp(jtext + jpos, "null", 4) == 0) {
        node->kind = 'n';
        jpos += 4;
    } else if (c == '[' || c == '{') {
        char close = c == '[' ? ']' : '}';
        node->kind = c;
        jpos++;
        for (;;) {
            char name[32] = "";
            jnode *item;
            jspace();
            REQUIRE(jpos < jlen);
            if (jtext[jpos] == close) {
                jpos++;
                break;
            }
            if (jtext[jpos] == ',') {
                jpos++;
                continue;
            }
            if (c == '{') {
                size_t start;
                REQUIRE(jtext[jpos] == '"');
                start = ++jpos;
                while (jpos < jlen && jtext[jpos] != '"') jpos++;
                REQUIRE(jpos < jlen && jpos - start < sizeof name);
                memcpy(name, jtext + start, jpos - start);
                name[jpos - start] = 0;
                jpos++;
                jspace();
                REQUIRE(jpos < jlen && jtext[jpos] == ':');
                jpos++;
            }
            node->items = realloc(node->items, (node->count + 1) * sizeof *node->items);
            REQUIRE(node->items != NULL);
            item = &node->items[node->count];
            jparse(item);
            memcpy(item->name, name, sizeof name);
            node->count++;
        }
    } else {
        REQUIRE(!"a JSON value of a kind these vectors do not have");
    }
}

static void jload(const char *path, jnode *root) {
    size_t len;
    char *text = read_file(path, &len);
    jtext = text;
    jpos = 0;
    jlen = len;
    jparse(root);
    REQUIRE(root->kind == '[');
    free(text);
}

static void jfree(jnode *node) {
    size_t i;
    for (i = 0; i < node->count; i++) jfree(&node->items[i]);
    free(node->items);
    free(node->value.data);
}

static const jnode *jget(const jnode *object, const char *name) {
    size_t i;
    REQUIRE(object->kind == '{');
    for (i = 0; i < object->count; i++) {
        if (strcmp(object->items[i].name, name) == 0) return &object->items[i];
    }
    fprintf(stderr, "vector has no field %s\n", name);
    exit(2);
}

static const bytes *hex(const jnode *object, const char *name) {
    const jnode *n = jget(object, name);
    REQUIRE(n->kind == 's');
    return &n->value;
}

/* The hex strings of a list, one after the other (free its data). */
static bytes concat(const jnode *list) {
    bytes b;
    size_t i, total = 0;
    REQUIRE(list->kind == '[');
    for (i = 0; i < list->count; i++) total += list->items[i].value.len;
    b.len = total;
    b.data = malloc(total + 1);
    REQUIRE(b.data != NULL);
    total = 0;
    for (i = 0; i < list->count; i++) {
        memcpy(b.data + total, list->items[i].value.data, list->items[i].value.len);
        total += list->items[i].value.len;
    }
    return b;
}

/* ---------------------------------------------------------------------------------------- */

#define BIG 4096
#define MAX_ENTRIES 8

static size_t token_len_of(uint16_t token_type) {
    switch (token_type) {
    case PP_TOKEN_TYPE_BLIND_RSA: return PP_TOKEN_LEN;
    case PP_TOKEN_TYPE_VOPRF_P384: return PP_VOPRF_P384_TOKEN_LEN;
    case PP_TOKEN_TYPE_VOPRF_RISTRETTO255: return PP_VOPRF_RISTRETTO255_TOKEN_LEN;
    default: return 0;
    }
}

static size_t challenge_of(uint16_t token_type, uint8_t *out, size_t cap) {
    size_t len = 0;
    const char *name = "issuer.example";
    OK(pp_challenge_encode(token_type, name, strlen(name), NULL, 0, "origin.example",
                           strlen("origin.example"), out, cap, &len));
    return len;
}

/* Every amortized vector of a file: the key from sk_s has the public key pk_s; the client given
 * the vector's nonces and blinds reproduces token_request and finalizes token_response into the
 * vector's tokens; our issuer's response (a fresh proof) finalizes into the same tokens; each
 * token redeems once with the issuer's key. */
static int test_amortized_vectors(const char *path, uint16_t token_type) {
    jnode root;
    size_t i, k;
    size_t token_len = token_len_of(token_type);
    jload(path, &root);
    REQUIRE(root.count == 5);
    for (i = 0; i < root.count; i++) {
        const jnode *v = &root.items[i];
        const bytes *sk = hex(v, "sk_s"), *pk = hex(v, "pk_s");
        const bytes *challenge = hex(v, "token_challenge"), *request = hex(v, "token_request");
        const bytes *response = hex(v, "token_response");
        const jnode *token_list = jget(v, "tokens");
        bytes nonces = concat(jget(v, "nonces")), blinds = concat(jget(v, "blinds"));
        bytes tokens = concat(token_list);
        size_t n = token_list->count;
        pp_issuer *issuer = NULL;
        pp_client *client = NULL;
        pp_pending_batch *batch = NULL;
        pp_redeemer *redeemer = NULL;
        uint8_t out[BIG], ours[BIG];
        size_t len = 0, ours_len = 0;

        REQUIRE(n >= 2 && tokens.len == n * token_len);
        OK(pp_issuer_new_from_scalar(token_type, sk->data, sk->len, &issuer));
        REQUIRE(issuer != NULL);
        OK(pp_issuer_public_key(issuer, out, sizeof out, &len));
        CHECK(same(out, len, pk));

        OK(pp_client_new_voprf(token_type, pk->data, pk->len, &client));
        OK(pp_client_request_amortized_with_randomness(client, challenge->data, challenge->len,
                                                       nonces.data, nonces.len, blinds.data,
                                                       blinds.len, &batch));
        REQUIRE(batch != NULL);
        EXPECT_RC(pp_pending_batch_request(batch, NULL, 0, &len), PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == request->len);
        OK(pp_pending_batch_request(batch, out, sizeof out, &len));
        CHECK(same(out, len, request));

        /* Finalize: the size asked, then too short by one byte (nothing written), then all. */
        EXPECT_RC(pp_pending_batch_finalize(batch, response->data, response->len, NULL, 0, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == n * token_len);
        memset(out, 0xa5, sizeof out);
        EXPECT_RC(pp_pending_batch_finalize(batch, response->data, response->len, out,
                                            n * token_len - 1, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == n * token_len && out[0] == 0xa5 && out[n * token_len - 2] == 0xa5);
        OK(pp_pending_batch_finalize(batch, response->data, response->len, out, sizeof out,
                                     &len));
        CHECK(same(out, len, &tokens));

        /* Our issuer: a fresh proof for the same evaluations, finalizing into the same tokens. */
        OK(pp_issuer_issue_amortized(issuer, request->data, request->len, 100, ours, sizeof ours,
                                     &ours_len));
        CHECK(ours_len == response->len);
        OK(pp_pending_batch_finalize(batch, ours, ours_len, out, sizeof out, &len));
        CHECK(same(out, len, &tokens));
        /* Over the limit: refused before any evaluation. */
        len = 12345;
        EXPECT_RC(pp_issuer_issue_amortized(issuer, request->data, request->len, n - 1, ours,
                                            sizeof ours, &len),
                  PP_ERR_TOO_LARGE);
        CHECK(len == 12345);
        /* A proof off by one bit: no token comes out. A response cut short: malformed. */
        memcpy(ours, response->data, response->len);
        ours[response->len - 1] ^= 1;
        EXPECT_RC(pp_pending_batch_finalize(batch, ours, response->len, out, sizeof out, &len),
                  PP_ERR_VERIFICATION_FAILED);
        CHECK(len == 12345);
        EXPECT_RC(pp_pending_batch_finalize(batch, response->data, response->len - 1, out,
                                            sizeof out, &len),
                  PP_ERR_INVALID_INPUT);

        OK(pp_redeemer_new_from_issuer(issuer, "memory:", &redeemer));
        for (k = 0; k < n; k++) {
            const uint8_t *token = tokens.data + k * token_len;
            OK(pp_redeemer_redeem(redeemer, token, token_len, challenge->data, challenge->len));
            EXPECT_RC(pp_redeemer_redeem(redeemer, token, token_len, challenge->data,
                                         challenge->len),
                      PP_ERR_ALREADY_SPENT);
        }

        pp_redeemer_free(redeemer);
        pp_pending_batch_free(batch);
        pp_client_free(client);
        pp_issuer_free(issuer);
        free(nonces.data);
        free(blinds.data);
        free(tokens.data);
    }
    jfree(&root);
    return 5;
}

/* One issuer of a generic batch, with what its tokens redeem through. */
typedef struct {
    pp_issuer *issuer;
    pp_redeemer *redeemer;
    const bytes *pk;
    uint16_t token_type;
} batch_issuer;

static void add_redeemer(batch_issuer *bi) {
    if (bi->token_type == PP_TOKEN_TYPE_BLIND_RSA) {
        /* Type 2: the public key suffices. */
        pp_verifier *verifier = NULL;
        OK(pp_verifier_new_from_spki(bi->pk->data, bi->pk->len, &verifier));
        OK(pp_redeemer_new(verifier, "memory:", &bi->redeemer));
        pp_verifier_free(verifier);
    } else {
        OK(pp_redeemer_new_from_issuer(bi->issuer, "memory:", &bi->redeemer));
    }
}

/* Every generic vector: each entry's client given its nonce, salt and blind; the batch of those
 * pending tokens reproduces token_request and finalizes token_response into every entry's
 * token; our issuers (one per key of the vector) answer a response that finalizes into the
 * same tokens, on 1, 2 or all threads; one issuer alone serves its own entries only (the
 * partial answer); each token redeems once. */
static int test_generic_vectors(const char *path) {
    jnode root;
    size_t i, k, j;
    jload(path, &root);
    REQUIRE(root.count == 3);
    for (i = 0; i < root.count; i++) {
        const jnode *v = &root.items[i];
        const jnode *issuance = jget(v, "issuance");
        const bytes *request = hex(v, "token_request"), *response = hex(v, "token_response");
        size_t n = issuance->count, n_issuers = 0, expected_len = 0;
        batch_issuer issuers[MAX_ENTRIES];
        const pp_issuer *issuer_list[MAX_ENTRIES];
        size_t owner[MAX_ENTRIES], token_lens[MAX_ENTRIES + 1];
        pp_pending_token *pending[MAX_ENTRIES];
        pp_pending_generic_batch *batch = NULL;
        uint8_t out[BIG], ours[BIG];
        size_t len = 0, ours_len = 0, threads;
        bytes tokens;

        REQUIRE(n >= 2 && n <= MAX_ENTRIES);
        tokens.data = malloc(BIG);
        REQUIRE(tokens.data != NULL);
        tokens.len = 0;
        for (k = 0; k < n; k++) {
            const jnode *e = &issuance->items[k];
            const bytes *type_bytes = hex(e, "token_type"), *sk = hex(e, "sk_s");
            const bytes *pk = hex(e, "pk_s"), *challenge = hex(e, "token_challenge");
            const bytes *nonce = hex(e, "nonce"), *blind = hex(e, "blind");
            const bytes *token = hex(e, "token");
            const jnode *salt = jget(e, "salt");
            uint16_t token_type;
            pp_client *client = NULL;
            REQUIRE(type_bytes->len == 2);
            token_type = (uint16_t)(type_bytes->data[0] << 8 | type_bytes->data[1]);
            for (j = 0; j < n_issuers; j++) {
                if (issuers[j].token_type == token_type && issuers[j].pk->len == pk->len &&
                    memcmp(issuers[j].pk->data, pk->data, pk->len) == 0)
                    break;
            }
            if (j == n_issuers) {
                batch_issuer *bi = &issuers[n_issuers++];
                bi->pk = pk;
                bi->token_type = token_type;
                bi->issuer = NULL;
                if (token_type == PP_TOKEN_TYPE_BLIND_RSA) {
                    OK(pp_issuer_new_from_pem((const char *)sk->data, sk->len, &bi->issuer));
                } else {
                    OK(pp_issuer_new_from_scalar(token_type, sk->data, sk->len, &bi->issuer));
                }
                REQUIRE(bi->issuer != NULL);
                OK(pp_issuer_public_key(bi->issuer, out, sizeof out, &len));
                CHECK(same(out, len, pk));
                add_redeemer(bi);
                issuer_list[j] = bi->issuer;
            }
            owner[k] = j;
            if (token_type == PP_TOKEN_TYPE_BLIND_RSA) {
                OK(pp_client_new(pk->data, pk->len, &client));
                REQUIRE(salt->kind == 's');
                OK(pp_client_request_with_randomness(client, challenge->data, challenge->len,
                                                     nonce->data, nonce->len, salt->value.data,
                                                     salt->value.len, blind->data, blind->len,
                                                     &pending[k]));
            } else {
                OK(pp_client_new_voprf(token_type, pk->data, pk->len, &client));
                CHECK(salt->kind == 'n');
                OK(pp_client_request_with_randomness(client, challenge->data, challenge->len,
                                                     nonce->data, nonce->len, NULL, 0,
                                                     blind->data, blind->len, &pending[k]));
            }
            pp_client_free(client);
            CHECK(token->len == token_len_of(token_type));
            memcpy(tokens.data + tokens.len, token->data, token->len);
            tokens.len += token->len;
        }

        OK(pp_pending_generic_batch_new((const pp_pending_token **)pending, n, &batch));
        REQUIRE(batch != NULL);
        /* The batch holds its own references: the pending tokens may go. */
        for (k = 0; k < n; k++) pp_pending_token_free(pending[k]);
        EXPECT_RC(pp_pending_generic_batch_request(batch, out, request->len - 1, &len),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == request->len);
        OK(pp_pending_generic_batch_request(batch, out, sizeof out, &len));
        CHECK(same(out, len, request));

        /* The vector's response: every entry's token, each length given. */
        token_lens[n] = 777;
        EXPECT_RC(pp_pending_generic_batch_finalize(batch, response->data, response->len, NULL,
                                                    0, &len, token_lens, n),
                  PP_ERR_BUFFER_TOO_SMALL);
        CHECK(len == tokens.len);
        OK(pp_pending_generic_batch_finalize(batch, response->data, response->len, out,
                                             sizeof out, &len, token_lens, n + 1));
        CHECK(same(out, len, &tokens));
        for (k = 0; k < n; k++) {
            CHECK(token_lens[k] == token_len_of(issuers[owner[k]].token_type));
            expected_len += token_lens[k];
        }
        CHECK(expected_len == len && token_lens[n] == 777);

        /* Our issuers together, on one thread, two, and the machine's count. */
        for (threads = 0; threads <= 2; threads++) {
            OK(pp_issuer_issue_generic(issuer_list, n_issuers, request->data, request->len, 100,
                                       threads, ours, sizeof ours, &ours_len));
            CHECK(ours_len == response->len);
            OK(pp_pending_generic_batch_finalize(batch, ours, ours_len, out, sizeof out, &len,
                                                 token_lens, n));
            CHECK(same(out, len, &tokens));
        }
        EXPECT_RC(pp_issuer_issue_generic(issuer_list, n_issuers, request->data, request->len,
                                          n - 1, 0, ours, sizeof ours, &ours_len),
                  PP_ERR_TOO_LARGE);

        /* The first issuer alone: the entries of the others' keys are refused, the rest
         * issued; finalize says which. */
        OK(pp_issuer_issue_generic(issuer_list, 1, request->data, request->len, 100, 0, ours,
                                   sizeof ours, &ours_len));
        OK(pp_pending_generic_batch_finalize(batch, ours, ours_len, out, sizeof out, &len,
                                             token_lens, n));
        {
            size_t at = 0, src = 0;
            for (k = 0; k < n; k++) {
                size_t full = token_len_of(issuers[owner[k]].token_type);
                if (owner[k] == 0) {
                    CHECK(token_lens[k] == full);
                    CHECK(memcmp(out + at, tokens.data + src, full) == 0);
                    at += full;
                } else {
                    CHECK(token_lens[k] == 0);
                }
                src += full;
            }
            CHECK(at == len);
        }

        /* Every token once, by the redeemer of its issuer. */
        {
            size_t at = 0;
            for (k = 0; k < n; k++) {
                const bytes *challenge = hex(&issuance->items[k], "token_challenge");
                size_t tl = token_len_of(issuers[owner[k]].token_type);
                pp_redeemer *r = issuers[owner[k]].redeemer;
                OK(pp_redeemer_redeem(r, tokens.data + at, tl, challenge->data, challenge->len));
                EXPECT_RC(pp_redeemer_redeem(r, tokens.data + at, tl, challenge->data,
                                             challenge->len),
                          PP_ERR_ALREADY_SPENT);
                at += tl;
            }
        }

        pp_pending_generic_batch_free(batch);
        for (j = 0; j < n_issuers; j++) {
            pp_redeemer_free(issuers[j].redeemer);
            pp_issuer_free(issuers[j].issuer);
        }
        free(tokens.data);
    }
    jfree(&root);
    return 3;
}

/* An amortized batch with a fresh key: request, issue, finalize, each token once, the double
 * spend; and its error paths. */
static void amortized_cycle(uint16_t token_type) {
    const size_t n = 7, token_len = token_len_of(token_type);
    pp_issuer *issuer = NULL, *rsa = NULL;
    pp_client *client = NULL, *rsa_client = NULL;
    pp_pending_batch *batch = NULL, *untouched = NULL;
    pp_redeemer *redeemer = NULL;
    uint8_t key[BIG], challenge[256], rsa_challenge[256], request[BIG], response[BIG];
    uint8_t tokens[BIG], bad[BIG];
    size_t len = 0, challenge_len, rsa_challenge_len, request_len = 0, response_len = 0, k;
    uint8_t nonces[2 * PP_NONCE_LEN] = {1, 2, 3}, blinds[96];

    OK(pp_issuer_generate_voprf(token_type, &issuer));
    OK(pp_issuer_public_key(issuer, key, sizeof key, &len));
    OK(pp_client_new_voprf(token_type, key, len, &client));
    challenge_len = challenge_of(token_type, challenge, sizeof challenge);
    OK(pp_client_request_amortized(client, challenge, challenge_len, n, &batch));
    OK(pp_pending_batch_request(batch, request, sizeof request, &request_len));
    CHECK(request[0] == 0 && request[1] == token_type);
    OK(pp_issuer_issue_amortized(issuer, request, request_len, n, response, sizeof response,
                                 &response_len));
    EXPECT_RC(pp_issuer_issue_amortized(issuer, request, request_len, n, response,
                                        response_len - 1, &len),
              PP_ERR_BUFFER_TOO_SMALL);
    CHECK(len == response_len);
    OK(pp_pending_batch_finalize(batch, response, response_len, tokens, sizeof tokens, &len));
    CHECK(len == n * token_len);
    OK(pp_redeemer_new_from_issuer(issuer, "memory:", &redeemer));
    for (k = 0; k < n; k++) {
        OK(pp_redeemer_redeem(redeemer, tokens + k * token_len, token_len, challenge,
                              challenge_len));
        EXPECT_RC(pp_redeemer_redeem(redeemer, tokens + k * token_len, token_len, NULL, 0),
                  PP_ERR_ALREADY_SPENT);
    }
    /* Each batch draws its own randomness. */
    {
        pp_pending_batch *other = NULL;
        uint8_t again[BIG];
        OK(pp_client_request_amortized(client, challenge, challenge_len, n, &other));
        OK(pp_pending_batch_request(other, again, sizeof again, &len));
        CHECK(len == request_len && memcmp(again, request, len) != 0);
        /* Another batch's response does not finalize this one. */
        EXPECT_RC(pp_pending_batch_finalize(other, response, response_len, tokens,
                                            sizeof tokens, &len),
                  PP_ERR_VERIFICATION_FAILED);
        pp_pending_batch_free(other);
    }

    /* The client's errors: an RSA client, a challenge of type 2, a count out of range, NULLs,
     * randomness that is not whole entries. */
    OK(pp_issuer_generate(&rsa));
    OK(pp_issuer_public_key(rsa, key, sizeof key, &len));
    OK(pp_client_new(key, len, &rsa_client));
    rsa_challenge_len = challenge_of(PP_TOKEN_TYPE_BLIND_RSA, rsa_challenge, sizeof rsa_challenge);
    EXPECT_RC(pp_client_request_amortized(rsa_client, rsa_challenge, rsa_challenge_len, 2,
                                          &untouched),
              PP_ERR_UNSUPPORTED_TOKEN);
    EXPECT_RC(pp_client_request_amortized(client, rsa_challenge, rsa_challenge_len, 2,
                                          &untouched),
              PP_ERR_UNSUPPORTED_TOKEN);
    EXPECT_RC(pp_client_request_amortized(client, challenge, challenge_len, 0, &untouched),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_client_request_amortized(client, challenge, challenge_len,
                                          1025 /* over the most, 1024 */, &untouched),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_client_request_amortized(client, challenge, challenge_len - 1, 2, &untouched),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_client_request_amortized(NULL, challenge, challenge_len, 2, &untouched),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_client_request_amortized(client, challenge, challenge_len, 2, NULL),
              PP_ERR_NULL_ARGUMENT);
    memset(blinds, 0x01, sizeof blinds);
    EXPECT_RC(pp_client_request_amortized_with_randomness(client, challenge, challenge_len, nonces,
                                                          PP_NONCE_LEN + 1, blinds, 64,
                                                          &untouched),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_client_request_amortized_with_randomness(client, challenge, challenge_len, nonces,
                                                          sizeof nonces, blinds, 63, &untouched),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_client_request_amortized_with_randomness(client, challenge, challenge_len, NULL,
                                                          0, blinds, 64, &untouched),
              PP_ERR_INVALID_INPUT);
    memset(blinds, 0xff, sizeof blinds);
    EXPECT_RC(pp_client_request_amortized_with_randomness(client, challenge, challenge_len, nonces,
                                                          sizeof nonces, blinds, sizeof blinds,
                                                          &untouched),
              PP_ERR_INVALID_INPUT);
    CHECK(untouched == NULL);

    /* The issuer's errors: over the limit, malformed (trailing, truncated, no element, not a
     * whole element), the RSA issuer, NULLs. */
    len = 12345;
    EXPECT_RC(pp_issuer_issue_amortized(issuer, request, request_len, n - 1, response,
                                        sizeof response, &len),
              PP_ERR_TOO_LARGE);
    EXPECT_RC(pp_issuer_issue_amortized(issuer, request, request_len, 0, response,
                                        sizeof response, &len),
              PP_ERR_TOO_LARGE);
    memcpy(bad, request, request_len);
    bad[request_len] = 0;
    EXPECT_RC(pp_issuer_issue_amortized(issuer, bad, request_len + 1, 100, response,
                                        sizeof response, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    EXPECT_RC(pp_issuer_issue_amortized(issuer, bad, request_len - 1, 100, response,
                                        sizeof response, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    {
        uint8_t empty[4] = {request[0], request[1], request[2], 0};
        uint8_t partial[5] = {request[0], request[1], request[2], 1, 2};
        EXPECT_RC(pp_issuer_issue_amortized(issuer, empty, sizeof empty, 100, response,
                                            sizeof response, &len),
                  PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
        EXPECT_RC(pp_issuer_issue_amortized(issuer, partial, sizeof partial, 100, response,
                                            sizeof response, &len),
                  PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    }
    EXPECT_RC(pp_issuer_issue_amortized(rsa, request, request_len, 100, response,
                                        sizeof response, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    EXPECT_RC(pp_issuer_issue_amortized(rsa, request, request_len, 1, response, sizeof response,
                                        &len),
              PP_ERR_TOO_LARGE);
    EXPECT_RC(pp_issuer_issue_amortized(NULL, request, request_len, 100, response,
                                        sizeof response, &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_issue_amortized(issuer, NULL, request_len, 100, response,
                                        sizeof response, &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_issue_amortized(issuer, request, request_len, 100, NULL, 10, &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_issuer_issue_amortized(issuer, request, request_len, 100, response,
                                        sizeof response, NULL),
              PP_ERR_NULL_ARGUMENT);
    CHECK(len == 12345);
    EXPECT_RC(pp_pending_batch_request(NULL, request, sizeof request, &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_pending_batch_finalize(NULL, response, response_len, tokens, sizeof tokens,
                                        &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_pending_batch_finalize(batch, NULL, 1, tokens, sizeof tokens, &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_pending_batch_finalize(batch, response, response_len, tokens, sizeof tokens,
                                        NULL),
              PP_ERR_NULL_ARGUMENT);
    CHECK(len == 12345);
    pp_pending_batch_free(NULL);

    pp_client_free(rsa_client);
    pp_issuer_free(rsa);
    pp_redeemer_free(redeemer);
    pp_pending_batch_free(batch);
    pp_client_free(client);
    pp_issuer_free(issuer);
}

/* A generic batch with fresh keys of all three types and one entry for a key no issuer given
 * holds: that entry is refused, the others are issued and redeem once; and the error paths. */
static void generic_cycle(void) {
    static const uint16_t types[3] = {PP_TOKEN_TYPE_BLIND_RSA, PP_TOKEN_TYPE_VOPRF_P384,
                                      PP_TOKEN_TYPE_VOPRF_RISTRETTO255};
    pp_issuer *issuers[4] = {NULL, NULL, NULL, NULL};
    pp_client *clients[4] = {NULL, NULL, NULL, NULL};
    pp_pending_token *pending[4] = {NULL, NULL, NULL, NULL};
    pp_redeemer *redeemers[3] = {NULL, NULL, NULL};
    pp_pending_generic_batch *batch = NULL, *untouched = NULL;
    uint8_t key[BIG], challenges[4][256], request[BIG], response[BIG], tokens[BIG], bad[BIG];
    size_t challenge_lens[4], token_lens[4], len = 0, request_len = 0, response_len = 0, k, at;
    const size_t n = 4;

    /* Entries 0-2: one per type, served; entry 3: a type 1 key of an issuer not given. */
    for (k = 0; k < n; k++) {
        uint16_t t = types[k < 3 ? k : 1];
        if (t == PP_TOKEN_TYPE_BLIND_RSA) {
            OK(pp_issuer_generate(&issuers[k]));
            OK(pp_issuer_public_key(issuers[k], key, sizeof key, &len));
            OK(pp_client_new(key, len, &clients[k]));
        } else {
            OK(pp_issuer_generate_voprf(t, &issuers[k]));
            OK(pp_issuer_public_key(issuers[k], key, sizeof key, &len));
            OK(pp_client_new_voprf(t, key, len, &clients[k]));
        }
        challenge_lens[k] = challenge_of(t, challenges[k], sizeof challenges[k]);
        OK(pp_client_request(clients[k], challenges[k], challenge_lens[k], &pending[k]));
        if (k < 3) OK(pp_redeemer_new_from_issuer(issuers[k], "memory:", &redeemers[k]));
    }
    OK(pp_pending_generic_batch_new((const pp_pending_token **)pending, n, &batch));
    OK(pp_pending_generic_batch_request(batch, request, sizeof request, &request_len));
    EXPECT_RC(pp_issuer_issue_generic((const pp_issuer **)issuers, 3, request, request_len,
                                      n, 0, response, 10, &len),
              PP_ERR_BUFFER_TOO_SMALL);
    OK(pp_issuer_issue_generic((const pp_issuer **)issuers, 3, request, request_len, n, 0,
                               response, sizeof response, &response_len));
    CHECK(len == response_len);
    OK(pp_pending_generic_batch_finalize(batch, response, response_len, tokens, sizeof tokens,
                                         &len, token_lens, n));
    CHECK(token_lens[0] == PP_TOKEN_LEN && token_lens[1] == PP_VOPRF_P384_TOKEN_LEN &&
          token_lens[2] == PP_VOPRF_RISTRETTO255_TOKEN_LEN && token_lens[3] == 0);
    CHECK(len == token_lens[0] + token_lens[1] + token_lens[2]);
    for (k = 0, at = 0; k < 3; k++) {
        OK(pp_redeemer_redeem(redeemers[k], tokens + at, token_lens[k], challenges[k],
                              challenge_lens[k]));
        EXPECT_RC(pp_redeemer_redeem(redeemers[k], tokens + at, token_lens[k], NULL, 0),
                  PP_ERR_ALREADY_SPENT);
        at += token_lens[k];
    }
    /* The issuer of entry 3 alone: the other three absent, entry 3 issued. */
    OK(pp_issuer_issue_generic((const pp_issuer **)&issuers[3], 1, request, request_len, n,
                               1, response, sizeof response, &response_len));
    OK(pp_pending_generic_batch_finalize(batch, response, response_len, tokens, sizeof tokens,
                                         &len, token_lens, n));
    CHECK(token_lens[0] == 0 && token_lens[1] == 0 && token_lens[2] == 0);
    CHECK(token_lens[3] == PP_VOPRF_P384_TOKEN_LEN && len == PP_VOPRF_P384_TOKEN_LEN);

    /* The issuer's errors. */
    len = 12345;
    EXPECT_RC(pp_issuer_issue_generic((const pp_issuer **)issuers, 3, request, request_len,
                                      n - 1, 0, response, sizeof response, &len),
              PP_ERR_TOO_LARGE);
    memcpy(bad, request, request_len);
    bad[request_len] = 0;
    EXPECT_RC(pp_issuer_issue_generic((const pp_issuer **)issuers, 3, bad, request_len + 1,
                                      n, 0, response, sizeof response, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    EXPECT_RC(pp_issuer_issue_generic((const pp_issuer **)issuers, 3, bad, request_len - 1,
                                      n, 0, response, sizeof response, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    bad[0] = 0;
    EXPECT_RC(pp_issuer_issue_generic((const pp_issuer **)issuers, 3, bad, 1, n, 0,
                                      response, sizeof response, &len),
              PP_ERR_UNPROCESSABLE_BLINDED_TOKEN);
    EXPECT_RC(pp_issuer_issue_generic((const pp_issuer **)issuers, 0, request, request_len,
                                      n, 0, response, sizeof response, &len),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_issuer_issue_generic(NULL, 3, request, request_len, n, 0, response,
                                      sizeof response, &len),
              PP_ERR_NULL_ARGUMENT);
    {
        const pp_issuer *with_null[2] = {issuers[0], NULL};
        EXPECT_RC(pp_issuer_issue_generic(with_null, 2, request, request_len, n, 0, response,
                                          sizeof response, &len),
                  PP_ERR_NULL_ARGUMENT);
    }
    EXPECT_RC(pp_issuer_issue_generic((const pp_issuer **)issuers, 3, request, request_len,
                                      n, 0, response, sizeof response, NULL),
              PP_ERR_NULL_ARGUMENT);
    CHECK(len == 12345);

    /* The client's errors: no entries, NULLs, a short length array, malformed responses. */
    EXPECT_RC(pp_pending_generic_batch_new((const pp_pending_token **)pending, 0,
                                           &untouched),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_pending_generic_batch_new(NULL, 2, &untouched), PP_ERR_NULL_ARGUMENT);
    {
        const pp_pending_token *with_null[2] = {pending[0], NULL};
        EXPECT_RC(pp_pending_generic_batch_new(with_null, 2, &untouched), PP_ERR_NULL_ARGUMENT);
    }
    EXPECT_RC(pp_pending_generic_batch_new((const pp_pending_token **)pending, n, NULL),
              PP_ERR_NULL_ARGUMENT);
    CHECK(untouched == NULL);
    OK(pp_issuer_issue_generic((const pp_issuer **)issuers, 3, request, request_len, n, 0,
                               response, sizeof response, &response_len));
    token_lens[0] = 999;
    EXPECT_RC(pp_pending_generic_batch_finalize(batch, response, response_len, tokens,
                                                sizeof tokens, &len, NULL, n),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_pending_generic_batch_finalize(batch, response, response_len, tokens,
                                                sizeof tokens, &len, token_lens, n - 1),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_pending_generic_batch_finalize(batch, response, response_len - 1, tokens,
                                                sizeof tokens, &len, token_lens, n),
              PP_ERR_INVALID_INPUT);
    EXPECT_RC(pp_pending_generic_batch_finalize(batch, response, response_len, tokens, 10, &len,
                                                token_lens, n),
              PP_ERR_BUFFER_TOO_SMALL);
    CHECK(len == PP_TOKEN_LEN + PP_VOPRF_P384_TOKEN_LEN + PP_VOPRF_RISTRETTO255_TOKEN_LEN);
    len = 12345;
    /* A byte of entry 0's blind signature (after the 2-byte length, presence and type): it
     * no longer verifies. */
    memcpy(bad, response, response_len);
    bad[10] ^= 1;
    EXPECT_RC(pp_pending_generic_batch_finalize(batch, bad, response_len, tokens, sizeof tokens,
                                                &len, token_lens, n),
              PP_ERR_VERIFICATION_FAILED);
    EXPECT_RC(pp_pending_generic_batch_finalize(NULL, response, response_len, tokens,
                                                sizeof tokens, &len, token_lens, n),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_pending_generic_batch_request(NULL, request, sizeof request, &len),
              PP_ERR_NULL_ARGUMENT);
    EXPECT_RC(pp_pending_generic_batch_request(batch, NULL, 5, &len), PP_ERR_NULL_ARGUMENT);
    CHECK(len == 12345 && token_lens[0] == 999);
    /* A response for a batch of one entry fewer. */
    {
        pp_pending_generic_batch *three = NULL;
        uint8_t three_request[BIG], three_response[BIG];
        size_t three_request_len, three_response_len;
        OK(pp_pending_generic_batch_new((const pp_pending_token **)pending, 3, &three));
        OK(pp_pending_generic_batch_request(three, three_request, sizeof three_request,
                                            &three_request_len));
        OK(pp_issuer_issue_generic((const pp_issuer **)issuers, 3, three_request,
                                   three_request_len, 3, 2, three_response,
                                   sizeof three_response, &three_response_len));
        EXPECT_RC(pp_pending_generic_batch_finalize(batch, three_response, three_response_len,
                                                    tokens, sizeof tokens, &len, token_lens, n),
                  PP_ERR_INVALID_INPUT);
        OK(pp_pending_generic_batch_finalize(three, three_response, three_response_len, tokens,
                                             sizeof tokens, &len, token_lens, 3));
        pp_pending_generic_batch_free(three);
    }
    pp_pending_generic_batch_free(NULL);

    pp_pending_generic_batch_free(batch);
    for (k = 0; k < n; k++) {
        pp_pending_token_free(pending[k]);
        pp_client_free(clients[k]);
        pp_issuer_free(issuers[k]);
        if (k < 3) pp_redeemer_free(redeemers[k]);
    }
}

int main(int argc, char **argv) {
    int vectors = 0;
    if (argc != 4) {
        fprintf(stderr, "usage: %s AMORTIZED_P384.json AMORTIZED_RISTRETTO255.json GENERIC.json\n",
                argv[0]);
        return 2;
    }
    vectors += test_amortized_vectors(argv[1], PP_TOKEN_TYPE_VOPRF_P384);
    vectors += test_amortized_vectors(argv[2], PP_TOKEN_TYPE_VOPRF_RISTRETTO255);
    vectors += test_generic_vectors(argv[3]);
    amortized_cycle(PP_TOKEN_TYPE_VOPRF_P384);
    amortized_cycle(PP_TOKEN_TYPE_VOPRF_RISTRETTO255);
    generic_cycle();
    printf("test_batch: %d vectors, %d checks, %d failures\n", vectors, checks, failures);
    return failures == 0 ? 0 : 1;
}
