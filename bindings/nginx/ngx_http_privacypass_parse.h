
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


/* the token types a location may accept */
#define NGX_HTTP_PRIVACYPASS_NTYPES               3

/* keys offered in one WWW-Authenticate header, over all types */
#define NGX_HTTP_PRIVACYPASS_MAX_KEYS             8


/*
 * What a location accepts of one token type: the digests of its current
 * challenges of that type and, for the privately verifiable types 1 and 5
 * (whose keys only the issuer can verify with), the token_key_id of each of
 * its keys of that type.
 */

typedef struct {
    uint16_t                      type;
    ngx_uint_t                    n;
    u_char                      (*digest)[NGX_HTTP_PRIVACYPASS_DIGEST_LEN];
    ngx_uint_t                    nkeys;
    u_char                      (*key_id)[PP_TOKEN_KEY_ID_LEN];
} ngx_http_privacypass_accept_t;


/* what an Authorization value holds */

typedef enum {
    /* a token of an accepted type bound to one of the location's
     * challenges of that type (and, types 1 and 5, naming one of its keys) */
    NGX_HTTP_PRIVACYPASS_TOKEN_BOUND = 0,
    /* a token of an accepted type bound to none of them */
    NGX_HTTP_PRIVACYPASS_TOKEN_UNBOUND,
    NGX_HTTP_PRIVACYPASS_TOKEN_TOO_LONG,
    /* not one PrivateToken credential with one base64url token */
    NGX_HTTP_PRIVACYPASS_TOKEN_MALFORMED,
    /* longer than a type 2 token, the longest */
    NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_LENGTH,
    /* not a well-formed token of type 1, 2 or 5 (of another type, or of
     * the wrong length for its type) */
    NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_TYPE,
    /* a well-formed token of a type the location does not accept */
    NGX_HTTP_PRIVACYPASS_TOKEN_NOT_ACCEPTED,
    /* a type 1 or 5 token, bound, naming none of the location's keys */
    NGX_HTTP_PRIVACYPASS_TOKEN_UNKNOWN_KEY
} ngx_http_privacypass_token_e;

#define NGX_HTTP_PRIVACYPASS_TOKEN_LAST   NGX_HTTP_PRIVACYPASS_TOKEN_UNKNOWN_KEY

/* whether a verdict comes with a well-formed token (its bytes, length and
 * type written) */
#define ngx_http_privacypass_token_read(rc)                                  \
    ((rc) == NGX_HTTP_PRIVACYPASS_TOKEN_BOUND                                \
     || (rc) == NGX_HTTP_PRIVACYPASS_TOKEN_UNBOUND                           \
     || (rc) == NGX_HTTP_PRIVACYPASS_TOKEN_NOT_ACCEPTED                      \
     || (rc) == NGX_HTTP_PRIVACYPASS_TOKEN_UNKNOWN_KEY)


ngx_http_privacypass_token_e ngx_http_privacypass_parse_token(u_char *value,
    size_t len, ngx_http_privacypass_accept_t *accept, ngx_uint_t naccept,
    u_char *token, size_t *token_len, uint16_t *type, ngx_uint_t *which,
    ngx_uint_t *match);
const char *ngx_http_privacypass_token_reason(
    ngx_http_privacypass_token_e rc);

ngx_http_privacypass_status_e ngx_http_privacypass_redeem_outcome(
    ngx_uint_t status, u_char *body, size_t len);

ngx_uint_t ngx_http_privacypass_key_file_is_directory(u_char *text,
    size_t len);


#endif /* _NGX_HTTP_PRIVACYPASS_PARSE_H_INCLUDED_ */
