
/*
 * The parsers of ngx_http_privacypass_module for bytes it does not choose:
 * a client's Authorization value, privacypassd's answer to a redeem call,
 * and the kind of the issuer's key file.  See ngx_http_privacypass_parse.c.
 */

#ifndef _NGX_HTTP_PRIVACYPASS_PARSE_H_INCLUDED_
#define _NGX_HTTP_PRIVACYPASS_PARSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <privacypass.h>


/* an Authorization value longer than this is refused unparsed */
#define NGX_HTTP_PRIVACYPASS_MAX_AUTHORIZATION    2048

/* a token's challenge_digest: SHA-256 of its TokenChallenge */
#define NGX_HTTP_PRIVACYPASS_DIGEST_LEN           32


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


ngx_http_privacypass_token_e ngx_http_privacypass_parse_token(u_char *value,
    size_t len, u_char (*digest)[NGX_HTTP_PRIVACYPASS_DIGEST_LEN],
    ngx_uint_t n, u_char *token, ngx_uint_t *match);
const char *ngx_http_privacypass_token_reason(
    ngx_http_privacypass_token_e rc);

ngx_http_privacypass_status_e ngx_http_privacypass_redeem_outcome(
    ngx_uint_t status, u_char *body, size_t len);

ngx_uint_t ngx_http_privacypass_key_file_is_directory(u_char *text,
    size_t len);


#endif /* _NGX_HTTP_PRIVACYPASS_PARSE_H_INCLUDED_ */
