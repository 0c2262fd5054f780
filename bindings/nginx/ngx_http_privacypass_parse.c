
/*
 * The parsers of ngx_http_privacypass_module for bytes it does not choose:
 *
 *   - a client's Authorization value: the token it carries and the
 *     challenge it is bound to, both read by libprivacypass;
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
 * (PP_TOKEN_LEN bytes), and which of the n challenge digests it is bound to.
 * token is written when the value holds one credential with one well-formed
 * token of at most PP_TOKEN_LEN bytes; *match when the answer is
 * NGX_HTTP_PRIVACYPASS_TOKEN_BOUND.
 */

ngx_http_privacypass_token_e
ngx_http_privacypass_parse_token(u_char *value, size_t len,
    u_char (*digest)[NGX_HTTP_PRIVACYPASS_DIGEST_LEN], ngx_uint_t n,
    u_char *token, ngx_uint_t *match)
{
    size_t      token_len, bound_len;
    pp_result   res;
    ngx_uint_t  i, found;
    u_char      bound[NGX_HTTP_PRIVACYPASS_DIGEST_LEN];

    if (len > NGX_HTTP_PRIVACYPASS_MAX_AUTHORIZATION) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_TOO_LONG;
    }

    res = pp_authorization_parse((const char *) value, len, token,
                                 PP_TOKEN_LEN, &token_len);

    if (res == PP_ERR_BUFFER_TOO_SMALL) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_LENGTH;
    }

    if (res != PP_OK) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_MALFORMED;
    }

    /* a well-formed type 2 token, or none */

    res = pp_token_challenge_digest(token, token_len, bound, sizeof(bound),
                                    &bound_len);

    if (res != PP_OK || bound_len != NGX_HTTP_PRIVACYPASS_DIGEST_LEN) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_TYPE;
    }

    /* every digest is compared, in constant time */

    found = n;

    for (i = 0; i < n; i++) {
        if (CRYPTO_memcmp(bound, digest[i], NGX_HTTP_PRIVACYPASS_DIGEST_LEN)
            == 0)
        {
            found = i;
        }
    }

    if (found == n) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_UNBOUND;
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
        return "not a token of type 2";

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
