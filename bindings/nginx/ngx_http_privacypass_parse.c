
/*
 * The parsers of ngx_http_privacypass_module for bytes it does not choose:
 *
 *   - a client's Authorization value: the token it carries, its type, the
 *     challenge it is bound to and the key it names, all read by
 *     libprivacypass;
 *   - privacypassd's answer to a redeem call: the request's fate, as
 *     libprivacypass reads the answer;
 *   - the issuer's key file: an RFC 9578 issuer directory or PEM (whose keys
 *     libprivacypass reads).
 *
 * This file uses nginx's types and macros but none of its functions, and
 * allocates nothing: bindings/nginx/tests/fuzz_parse.c compiles it on its
 * own under AddressSanitizer and UndefinedBehaviorSanitizer and drives it
 * with generated input (make test-nginx, make fuzz-nginx).
 */

#include <openssl/crypto.h>

#include "ngx_http_privacypass_parse.h"


/*
 * The token of an Authorization value (`PrivateToken token=...`) into token
 * (PP_TOKEN_LEN bytes, the longest type's), its length and type, and what
 * the location accepts of it: accept[0..naccept) lists the location's token
 * types, each with its challenge digests and (types 1 and 5) key ids.
 *
 * token, *token_len and *type are written when the value holds one
 * credential with one well-formed token of type 1, 2 or 5
 * (ngx_http_privacypass_token_read()); *which (the index in accept of the
 * token's type) and *match (the digest it is bound to) when the answer is
 * NGX_HTTP_PRIVACYPASS_TOKEN_BOUND.  The checks, in order: the type is
 * accepted, the token is bound to one of that type's digests, and a type 1
 * or 5 token names one of that type's keys.  Digests and key ids are all
 * compared, in constant time.
 */

ngx_http_privacypass_token_e
ngx_http_privacypass_parse_token(u_char *value, size_t len,
    ngx_http_privacypass_accept_t *accept, ngx_uint_t naccept,
    u_char *token, size_t *token_len, uint16_t *type, ngx_uint_t *which,
    ngx_uint_t *match)
{
    size_t                          n, bound_len, id_len;
    uint16_t                        t;
    pp_result                       res;
    ngx_uint_t                      i, found, known;
    ngx_http_privacypass_accept_t  *a;
    u_char                          bound[NGX_HTTP_PRIVACYPASS_DIGEST_LEN];
    u_char                          id[PP_TOKEN_KEY_ID_LEN];

    if (len > NGX_HTTP_PRIVACYPASS_MAX_AUTHORIZATION) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_TOO_LONG;
    }

    res = pp_authorization_parse((const char *) value, len, token,
                                 PP_TOKEN_LEN, &n);

    if (res == PP_ERR_BUFFER_TOO_SMALL) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_LENGTH;
    }

    if (res != PP_OK) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_MALFORMED;
    }

    /* a well-formed token of type 1, 2 or 5, or none */

    res = pp_token_type(token, n, &t);

    if (res != PP_OK) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_TYPE;
    }

    res = pp_token_challenge_digest(token, n, bound, sizeof(bound),
                                    &bound_len);

    if (res != PP_OK || bound_len != NGX_HTTP_PRIVACYPASS_DIGEST_LEN) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_TYPE;
    }

    res = pp_token_key_id(token, n, id, sizeof(id), &id_len);

    if (res != PP_OK || id_len != PP_TOKEN_KEY_ID_LEN) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_TYPE;
    }

    *token_len = n;
    *type = t;

    a = NULL;

    for (i = 0; i < naccept; i++) {
        if (accept[i].type == t) {
            a = &accept[i];
            *which = i;
            break;
        }
    }

    if (a == NULL) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_NOT_ACCEPTED;
    }

    found = a->n;

    for (i = 0; i < a->n; i++) {
        if (CRYPTO_memcmp(bound, a->digest[i],
                          NGX_HTTP_PRIVACYPASS_DIGEST_LEN)
            == 0)
        {
            found = i;
        }
    }

    if (found == a->n) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_UNBOUND;
    }

    /* type 2 tokens are verified, key and all, by the worker's verifier */

    if (t != PP_TOKEN_TYPE_BLIND_RSA) {
        known = 0;

        for (i = 0; i < a->nkeys; i++) {
            if (CRYPTO_memcmp(id, a->key_id[i], PP_TOKEN_KEY_ID_LEN) == 0) {
                known = 1;
            }
        }

        if (!known) {
            return NGX_HTTP_PRIVACYPASS_TOKEN_UNKNOWN_KEY;
        }
    }

    *match = found;

    return NGX_HTTP_PRIVACYPASS_TOKEN_BOUND;
}


/* the error log's words for a refused Authorization value */

const char *
ngx_http_privacypass_token_reason(ngx_http_privacypass_token_e rc)
{
    switch (rc) {

    case NGX_HTTP_PRIVACYPASS_TOKEN_BOUND:
        return "bound to a current challenge of this location";

    case NGX_HTTP_PRIVACYPASS_TOKEN_UNBOUND:
        return "token not bound to a current challenge of this location";

    case NGX_HTTP_PRIVACYPASS_TOKEN_TOO_LONG:
        return "Authorization header too long";

    case NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_LENGTH:
        return "token of the wrong length";

    case NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_TYPE:
        return "not a well-formed token of type 1, 2 or 5";

    case NGX_HTTP_PRIVACYPASS_TOKEN_NOT_ACCEPTED:
        return "a token of a type this location does not accept "
               "(privacypass_token_types)";

    case NGX_HTTP_PRIVACYPASS_TOKEN_UNKNOWN_KEY:
        return "token of a key this location does not offer";

    default: /* NGX_HTTP_PRIVACYPASS_TOKEN_MALFORMED */
        return "not one PrivateToken credential with one base64url token";
    }
}


/*
 * privacypassd's answer to the JSON-RPC redeem call (its HTTP status, 0 when
 * there was none, and its body), as pp_redeem_response_result() reads it:
 * VALID, SPENT, INVALID (a token the daemon refuses: verification failed
 * -32020, a type it does not serve -32022, not a well-formed token -32602),
 * or ERROR for anything else (fail closed: nothing shows the token spent).
 */

ngx_http_privacypass_status_e
ngx_http_privacypass_redeem_outcome(ngx_uint_t status, u_char *body,
    size_t len)
{
    switch (pp_redeem_response_result(status <= 999 ? (int) status : 0, body,
                                      len))
    {
    case PP_OK:
        return NGX_HTTP_PRIVACYPASS_VALID;

    case PP_ERR_ALREADY_SPENT:
        return NGX_HTTP_PRIVACYPASS_SPENT;

    case PP_ERR_VERIFICATION_FAILED:
    case PP_ERR_UNSUPPORTED_TOKEN:
    case PP_ERR_INVALID_PARAMS:
        return NGX_HTTP_PRIVACYPASS_INVALID;

    default:
        return NGX_HTTP_PRIVACYPASS_ERROR;
    }
}


/* whether a key file is an RFC 9578 issuer directory (JSON: its first byte
 * other than whitespace is "{") rather than PEM */

ngx_uint_t
ngx_http_privacypass_key_file_is_directory(u_char *text, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r'
            && text[i] != '\n')
        {
            return text[i] == '{';
        }
    }

    return 0;
}
