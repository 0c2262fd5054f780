
/*
 * The parsers of ngx_http_privacypass_module for bytes it does not choose:
 * a client's Authorization value, privacypassd's answer to a redeem call,
 * and the issuer's key file.  See ngx_http_privacypass_parse.c.
 */

#ifndef _NGX_HTTP_PRIVACYPASS_PARSE_H_INCLUDED_
#define _NGX_HTTP_PRIVACYPASS_PARSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <privacypass.h>


/* an Authorization value longer than this is refused unparsed */
#define NGX_HTTP_PRIVACYPASS_MAX_AUTHORIZATION    2048

#define NGX_HTTP_PRIVACYPASS_DIGEST_LEN           32

/* RFC 9578 Token: token_type(2) nonce(32) challenge_digest(32)
 * token_key_id(32) authenticator(256) */
#define NGX_HTTP_PRIVACYPASS_DIGEST_OFFSET        34
#define NGX_HTTP_PRIVACYPASS_KEY_ID_OFFSET        66


/* what a request's token came to: the $privacypass_status values */

typedef enum {
    NGX_HTTP_PRIVACYPASS_NONE = 0,
    NGX_HTTP_PRIVACYPASS_MISSING,
    NGX_HTTP_PRIVACYPASS_INVALID,
    NGX_HTTP_PRIVACYPASS_SPENT,
    NGX_HTTP_PRIVACYPASS_VALID,
    NGX_HTTP_PRIVACYPASS_ERROR
} ngx_http_privacypass_status_e;


/* what an Authorization value holds */

typedef enum {
    /* a type 2 token bound to one of the location's challenges */
    NGX_HTTP_PRIVACYPASS_TOKEN_BOUND = 0,
    /* a type 2 token bound to none of them */
    NGX_HTTP_PRIVACYPASS_TOKEN_UNBOUND,
    NGX_HTTP_PRIVACYPASS_TOKEN_TOO_LONG,
    /* not one PrivateToken credential with one base64url token */
    NGX_HTTP_PRIVACYPASS_TOKEN_MALFORMED,
    /* longer than a type 2 token */
    NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_LENGTH,
    /* shorter, or of another type */
    NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_TYPE
} ngx_http_privacypass_token_e;


/* the keys of a key file, one after the other */

typedef struct {
    u_char                       *pos;
    u_char                       *last;
    /* as many bytes as the file: where each key is decoded */
    u_char                       *buf;
    /* an RFC 9578 issuer directory (JSON) rather than PEM */
    unsigned                      directory:1;
} ngx_http_privacypass_key_scan_t;


ngx_http_privacypass_token_e ngx_http_privacypass_parse_token(u_char *value,
    size_t len, u_char (*digest)[NGX_HTTP_PRIVACYPASS_DIGEST_LEN],
    ngx_uint_t n, u_char *token, ngx_uint_t *match);
const char *ngx_http_privacypass_token_reason(
    ngx_http_privacypass_token_e rc);

ngx_http_privacypass_status_e ngx_http_privacypass_redeem_outcome(
    ngx_uint_t status, u_char *body, size_t len);

void ngx_http_privacypass_key_scan_init(ngx_http_privacypass_key_scan_t *scan,
    u_char *text, size_t len, u_char *buf);
ngx_int_t ngx_http_privacypass_key_scan_next(
    ngx_http_privacypass_key_scan_t *scan, ngx_str_t *der);
ngx_int_t ngx_http_privacypass_spki(ngx_str_t *der, u_char *spki);


#endif /* _NGX_HTTP_PRIVACYPASS_PARSE_H_INCLUDED_ */
