
/*
 * The parsers of ngx_http_privacypass_module for bytes it does not choose:
 *
 *   - a client's Authorization value: the token it carries (read by
 *     libprivacypass) and the challenge it is bound to;
 *   - privacypassd's answer to a redeem call: the request's fate;
 *   - the issuer's key file (an RFC 9578 issuer directory, or PEM): the keys
 *     the module offers in its challenges.
 *
 * This file uses nginx's types and macros but none of its functions, and
 * allocates nothing: bindings/nginx/tests/fuzz_parse.c compiles it on its
 * own under AddressSanitizer and UndefinedBehaviorSanitizer and drives it
 * with generated input (make test-nginx, make fuzz-nginx).
 */

#include <openssl/crypto.h>

#include "ngx_http_privacypass_parse.h"


#define NGX_HTTP_PRIVACYPASS_RSA_PREFIX_LEN       24
#define NGX_HTTP_PRIVACYPASS_PSS_PREFIX_LEN       72
#define NGX_HTTP_PRIVACYPASS_RSA_SPKI_LEN         294


static u_char *ngx_http_privacypass_find(u_char *p, size_t len,
    const char *s, size_t n);
static ngx_int_t ngx_http_privacypass_decode_base64(u_char *dst,
    size_t *dst_len, u_char *src, size_t len, ngx_uint_t url);
static ngx_int_t ngx_http_privacypass_next_directory_key(
    ngx_http_privacypass_key_scan_t *scan, ngx_str_t *der);
static ngx_int_t ngx_http_privacypass_next_pem_key(
    ngx_http_privacypass_key_scan_t *scan, ngx_str_t *der);


#define ngx_http_privacypass_has(body, len, s)                                \
    (ngx_http_privacypass_find(body, len, s, sizeof(s) - 1) != NULL)

#define ngx_http_privacypass_space(c)                                         \
    ((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\n')


/* SubjectPublicKeyInfo headers: rsaEncryption and RFC 9578's RSASSA-PSS
 * (SHA-384, MGF1-SHA-384, salt 48) for a 2048-bit modulus; the
 * RSAPublicKey that follows is the same in both. */

static const u_char  ngx_http_privacypass_rsa_prefix[] = {
    0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
    0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00
};

static const u_char  ngx_http_privacypass_pss_prefix[] = {
    0x30, 0x82, 0x01, 0x52, 0x30, 0x3d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
    0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x30, 0xa0, 0x0d, 0x30, 0x0b, 0x06,
    0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0xa1, 0x1a,
    0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x08, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
    0x02, 0x02, 0xa2, 0x03, 0x02, 0x01, 0x30, 0x03, 0x82, 0x01, 0x0f, 0x00
};


/*
 * The token of an Authorization value (`PrivateToken token=...`, read by
 * libprivacypass) into token (PP_TOKEN_LEN bytes), and which of the n
 * challenge digests it is bound to.  token is written when the value holds
 * one credential with one well-formed token of at most PP_TOKEN_LEN bytes;
 * *match when the answer is NGX_HTTP_PRIVACYPASS_TOKEN_BOUND.
 */

ngx_http_privacypass_token_e
ngx_http_privacypass_parse_token(u_char *value, size_t len,
    u_char (*digest)[NGX_HTTP_PRIVACYPASS_DIGEST_LEN], ngx_uint_t n,
    u_char *token, ngx_uint_t *match)
{
    size_t      token_len;
    u_char     *bound;
    pp_result   res;
    ngx_uint_t  i, found;

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

    if (token_len != PP_TOKEN_LEN
        || token[0] != 0
        || token[1] != PP_TOKEN_TYPE_BLIND_RSA)
    {
        return NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_TYPE;
    }

    /* every digest is compared, in constant time */

    bound = token + NGX_HTTP_PRIVACYPASS_DIGEST_OFFSET;
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
 * there was none, and its body): VALID, SPENT, INVALID (a token the daemon
 * refuses: verification failed -32020, a type it does not serve -32022, not
 * a well-formed token -32602), or ERROR for anything else (fail closed:
 * nothing was recorded).
 */

ngx_http_privacypass_status_e
ngx_http_privacypass_redeem_outcome(ngx_uint_t status, u_char *body,
    size_t len)
{
    if (status == 200
        && ngx_http_privacypass_has(body, len, "\"success\"")
        && !ngx_http_privacypass_has(body, len, "\"error\""))
    {
        return NGX_HTTP_PRIVACYPASS_VALID;
    }

    /* a refused token: 200, 400 or 403, with its JSON-RPC error code */

    if (status != 200 && status != 400 && status != 403) {
        return NGX_HTTP_PRIVACYPASS_ERROR;
    }

    if (ngx_http_privacypass_has(body, len, "-32021")) {
        return NGX_HTTP_PRIVACYPASS_SPENT;
    }

    if (ngx_http_privacypass_has(body, len, "-32020")
        || ngx_http_privacypass_has(body, len, "-32022")
        || ngx_http_privacypass_has(body, len, "-32602"))
    {
        return NGX_HTTP_PRIVACYPASS_INVALID;
    }

    return NGX_HTTP_PRIVACYPASS_ERROR;
}


/*
 * The keys of a key file of len bytes: the "token-key" fields of an issuer
 * directory (base64url or base64, padded or not), or the PUBLIC KEY blocks
 * of PEM.  buf takes len bytes.
 */

void
ngx_http_privacypass_key_scan_init(ngx_http_privacypass_key_scan_t *scan,
    u_char *text, size_t len, u_char *buf)
{
    u_char  *p;

    scan->pos = text;
    scan->last = text + len;
    scan->buf = buf;

    for (p = text; p < scan->last; p++) {
        if (!ngx_http_privacypass_space(*p)) {
            break;
        }
    }

    scan->directory = (p < scan->last && *p == '{');
}


/* NGX_OK: the next key, decoded, in der (pointing into buf until the next
 * call); NGX_DONE: there is none */

ngx_int_t
ngx_http_privacypass_key_scan_next(ngx_http_privacypass_key_scan_t *scan,
    ngx_str_t *der)
{
    if (scan->directory) {
        return ngx_http_privacypass_next_directory_key(scan, der);
    }

    return ngx_http_privacypass_next_pem_key(scan, der);
}


static ngx_int_t
ngx_http_privacypass_next_directory_key(ngx_http_privacypass_key_scan_t *scan,
    ngx_str_t *der)
{
    u_char  *p, *q, *last;
    size_t   len;

    static const char  field[] = "\"token-key\"";

    p = scan->pos;
    last = scan->last;

    while ((p = ngx_http_privacypass_find(p, last - p, field,
                                          sizeof(field) - 1))
           != NULL)
    {
        p += sizeof(field) - 1;

        while (p < last && (ngx_http_privacypass_space(*p) || *p == ':')) {
            p++;
        }

        if (p == last || *p != '"') {
            continue;
        }

        q = ++p;

        while (p < last && *p != '"') {
            p++;
        }

        if (p == last) {
            break;
        }

        len = p - q;

        while (len && q[len - 1] == '=') {
            len--;
        }

        if (ngx_http_privacypass_decode_base64(scan->buf, &der->len, q, len, 1)
            == NGX_OK
            || ngx_http_privacypass_decode_base64(scan->buf, &der->len, q, len,
                                                  0)
               == NGX_OK)
        {
            der->data = scan->buf;
            scan->pos = p;
            return NGX_OK;
        }
    }

    scan->pos = last;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_privacypass_next_pem_key(ngx_http_privacypass_key_scan_t *scan,
    ngx_str_t *der)
{
    u_char  *p, *q, *end, *last;
    size_t   len;

    static const char  begin[] = "-----BEGIN PUBLIC KEY-----";
    static const char  endm[] = "-----END PUBLIC KEY-----";

    p = scan->pos;
    last = scan->last;

    while ((p = ngx_http_privacypass_find(p, last - p, begin,
                                          sizeof(begin) - 1))
           != NULL)
    {
        p += sizeof(begin) - 1;

        end = ngx_http_privacypass_find(p, last - p, endm, sizeof(endm) - 1);
        if (end == NULL) {
            break;
        }

        scan->pos = end + sizeof(endm) - 1;

        /* the base64 without its line breaks, then decoded in place */

        len = 0;

        for (q = p; q < end; q++) {
            if (!ngx_http_privacypass_space(*q)) {
                scan->buf[len++] = *q;
            }
        }

        while (len && scan->buf[len - 1] == '=') {
            len--;
        }

        if (ngx_http_privacypass_decode_base64(scan->buf, &der->len, scan->buf,
                                               len, 0)
            == NGX_OK)
        {
            der->data = scan->buf;
            return NGX_OK;
        }

        p = scan->pos;
    }

    scan->pos = last;

    return NGX_DONE;
}


/*
 * A key as the module offers it (PP_PUBLIC_KEY_LEN bytes into spki): an
 * RFC 9578 RSASSA-PSS SubjectPublicKeyInfo as it is, or a 2048-bit
 * rsaEncryption one with the PSS header.  NGX_DECLINED for anything else
 * (e.g. a token type 1 key); libprivacypass checks the rest.
 */

ngx_int_t
ngx_http_privacypass_spki(ngx_str_t *der, u_char *spki)
{
    if (der->len == PP_PUBLIC_KEY_LEN
        && ngx_memcmp(der->data, ngx_http_privacypass_pss_prefix,
                      NGX_HTTP_PRIVACYPASS_PSS_PREFIX_LEN)
           == 0)
    {
        ngx_memcpy(spki, der->data, PP_PUBLIC_KEY_LEN);
        return NGX_OK;
    }

    if (der->len == NGX_HTTP_PRIVACYPASS_RSA_SPKI_LEN
        && ngx_memcmp(der->data, ngx_http_privacypass_rsa_prefix,
                      NGX_HTTP_PRIVACYPASS_RSA_PREFIX_LEN)
           == 0)
    {
        ngx_memcpy(spki, ngx_http_privacypass_pss_prefix,
                   NGX_HTTP_PRIVACYPASS_PSS_PREFIX_LEN);
        ngx_memcpy(spki + NGX_HTTP_PRIVACYPASS_PSS_PREFIX_LEN,
                   der->data + NGX_HTTP_PRIVACYPASS_RSA_PREFIX_LEN,
                   PP_PUBLIC_KEY_LEN - NGX_HTTP_PRIVACYPASS_PSS_PREFIX_LEN);
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* the first occurrence of s (n > 0 bytes, ASCII case ignored) in the len
 * bytes at p (which may be NULL when len is 0) */

static u_char *
ngx_http_privacypass_find(u_char *p, size_t len, const char *s, size_t n)
{
    size_t   i;
    u_char  *end;

    if (len < n) {
        return NULL;
    }

    for (end = p + (len - n); p <= end; p++) {

        for (i = 0; i < n; i++) {
            if (ngx_tolower(p[i]) != ngx_tolower((u_char) s[i])) {
                break;
            }
        }

        if (i == n) {
            return p;
        }
    }

    return NULL;
}


/*
 * base64 (url: base64url) without padding, len bytes of src into dst, which
 * may be src itself: each group of 4 characters is read before its 3 bytes
 * are written.  Bits left over in a last partial group are ignored.
 */

static ngx_int_t
ngx_http_privacypass_decode_base64(u_char *dst, size_t *dst_len, u_char *src,
    size_t len, ngx_uint_t url)
{
    u_char      c, *d;
    size_t      i;
    uint32_t    group;
    ngx_uint_t  k, v;

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    d = dst;
    group = 0;

    for (i = 0; i < len; i++) {
        c = src[i];

        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';

        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;

        } else if (c == (url ? '-' : '+')) {
            v = 62;

        } else if (c == (url ? '_' : '/')) {
            v = 63;

        } else {
            return NGX_ERROR;
        }

        group = (group << 6) | v;

        if (i % 4 == 3) {
            *d++ = (u_char) (group >> 16);
            *d++ = (u_char) (group >> 8);
            *d++ = (u_char) group;
            group = 0;
        }
    }

    /* 2 or 3 characters left: 1 or 2 bytes */

    k = len % 4;

    if (k == 2) {
        *d++ = (u_char) (group >> 4);

    } else if (k == 3) {
        *d++ = (u_char) (group >> 10);
        *d++ = (u_char) (group >> 2);
    }

    *dst_len = d - dst;

    return NGX_OK;
}
