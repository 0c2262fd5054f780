
/*
 * What the files of ngx_http_privacypass_module share: its configuration,
 * the state of a request, and the functions each file offers the others.
 *
 *   ngx_http_privacypass_module.c     the module, its directives and
 *                                     variables, the access phase
 *   ngx_http_privacypass_challenge.c  the challenges of a location, their
 *                                     time windows and the context secret
 *   ngx_http_privacypass_redeem.c     the redeem subrequest to privacypassd
 *                                     and privacypass_redeem_url
 *   ngx_http_privacypass_keys.c       privacypass_keys: the issuer's keys;
 *                                     privacypass_token_types
 *   ngx_http_privacypass_parse.c      the parsers of untrusted bytes
 *                                     (ngx_http_privacypass_parse.h)
 */

#ifndef _NGX_HTTP_PRIVACYPASS_MODULE_H_INCLUDED_
#define _NGX_HTTP_PRIVACYPASS_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <privacypass.h>

#include "ngx_http_privacypass_parse.h"


#define NGX_HTTP_PRIVACYPASS_CONTEXT_PER_REQUEST  0
#define NGX_HTTP_PRIVACYPASS_CONTEXT_NONE         1

#define NGX_HTTP_PRIVACYPASS_MAX_FILE             (1024 * 1024)
#define NGX_HTTP_PRIVACYPASS_SECRET_LEN           32


/*
 * one key of the key file: its Token Key Encoding, token_key_id and the
 * not-before the directory gives it (Unix seconds, 0 when none: a PEM key)
 */
typedef struct {
    uint16_t                      type;
    size_t                        len;
    u_char                       *key;
    u_char                        key_id[PP_TOKEN_KEY_ID_LEN];
    time_t                        not_before;
} ngx_http_privacypass_key_t;


/*
 * The keys of a privacypass_keys file: of each token type the first
 * NGX_HTTP_PRIVACYPASS_MAX_KEYS, in the file's order; the verifier of its
 * type 2 keys (NULL when it has none).  A type whose keys could not be read
 * (an invalid key of that type in a directory) has res[] other than PP_OK:
 * a location accepting that type refuses to start.
 */
typedef struct {
    pp_verifier                  *verifier;
    ngx_str_t                     name;
    unsigned                      directory:1;
    pp_result                     res[NGX_HTTP_PRIVACYPASS_NTYPES];
    ngx_uint_t                    nkeys;
    ngx_http_privacypass_key_t    key[NGX_HTTP_PRIVACYPASS_NTYPES
                                      * NGX_HTTP_PRIVACYPASS_MAX_KEYS];
} ngx_http_privacypass_keys_t;


/* privacypass_token_types: the types in the order given */
typedef struct {
    ngx_uint_t                    n;
    uint16_t                      type[NGX_HTTP_PRIVACYPASS_NTYPES];
} ngx_http_privacypass_types_t;


/*
 * The challenges a location accepts: of each of its token types, for
 * "per-request" those of the current and the previous time window, for
 * "none" the one fixed challenge; its keys, each with the challenge of its
 * type, all accepted; and of each type the one key offered now (offered[]):
 * the first whose not-before has passed, as a client reading the directory
 * picks it (RFC 9578 section 4), so a key the issuer lists before it issues
 * is offered from its not-before on.  next_start: the next not-before to
 * come, when the offered keys change.  Each worker keeps its own copy (the
 * configuration is copied on fork) and recomputes it when the window moves
 * on or a key starts.
 */
typedef struct {
    time_t                        window;
    ngx_uint_t                    n;
    ngx_uint_t                    ntypes;
    ngx_str_t                     challenge[NGX_HTTP_PRIVACYPASS_NTYPES][2];
    u_char                        digest[NGX_HTTP_PRIVACYPASS_NTYPES][2]
                                        [NGX_HTTP_PRIVACYPASS_DIGEST_LEN];
    u_char                        key_id[NGX_HTTP_PRIVACYPASS_NTYPES]
                                        [NGX_HTTP_PRIVACYPASS_MAX_KEYS]
                                        [PP_TOKEN_KEY_ID_LEN];
    ngx_http_privacypass_accept_t accept[NGX_HTTP_PRIVACYPASS_NTYPES];
    ngx_uint_t                    noffer;
    ngx_http_privacypass_key_t   *offer[NGX_HTTP_PRIVACYPASS_MAX_KEYS];
    ngx_uint_t                    offer_type[NGX_HTTP_PRIVACYPASS_MAX_KEYS];
    u_char                        offered[NGX_HTTP_PRIVACYPASS_MAX_KEYS];
    time_t                        next_start;
    ngx_str_t                     www_authenticate;
    size_t                        challenge_cap;
    size_t                        header_cap;
} ngx_http_privacypass_challenges_t;


/* a location that privacypass_redeem_url added to a server */
typedef struct {
    void                         *server;
    ngx_str_t                     uri;
} ngx_http_privacypass_generated_t;


typedef struct {
    u_char                        secret[NGX_HTTP_PRIVACYPASS_SECRET_LEN];
    ngx_str_t                     secret_file;
    ngx_array_t                   generated;
} ngx_http_privacypass_main_conf_t;


typedef struct {
    ngx_flag_t                    enable;
    ngx_str_t                     issuer_name;
    ngx_str_t                     origin_info;
    ngx_uint_t                    context;
    time_t                        max_age;
    ngx_str_t                     redeem_uri;
    ngx_http_privacypass_keys_t  *keys;
    ngx_http_privacypass_types_t *types;
    ngx_http_privacypass_challenges_t  *challenges;
} ngx_http_privacypass_loc_conf_t;


typedef struct {
    ngx_http_privacypass_status_e  status;
    unsigned                      redeeming:1;
    unsigned                      redeemed:1;
    unsigned                      has_key_id:1;
    unsigned                      has_type:1;
    uint16_t                      type;
    ngx_uint_t                    redeem_status;
    ngx_str_t                     redeem_body;
    u_char                        key_id[PP_TOKEN_KEY_ID_LEN];
} ngx_http_privacypass_ctx_t;


/* ngx_http_privacypass_challenge.c */
char *ngx_http_privacypass_init_secret(ngx_conf_t *cf,
    ngx_http_privacypass_main_conf_t *pmcf);
char *ngx_http_privacypass_init_challenges(ngx_conf_t *cf,
    ngx_http_privacypass_loc_conf_t *conf);
ngx_int_t ngx_http_privacypass_update_challenges(
    ngx_http_privacypass_loc_conf_t *plcf,
    ngx_http_privacypass_main_conf_t *pmcf, time_t now, ngx_log_t *log);

/* ngx_http_privacypass_redeem.c */
char *ngx_http_privacypass_redeem_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_privacypass_redeem(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx,
    u_char *token, size_t token_len, ngx_str_t *challenge);
ngx_http_privacypass_status_e ngx_http_privacypass_redeemed(
    ngx_http_request_t *r, ngx_http_privacypass_loc_conf_t *plcf,
    ngx_http_privacypass_ctx_t *ctx);

/* ngx_http_privacypass_keys.c */
char *ngx_http_privacypass_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_privacypass_token_types(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_privacypass_check_keys(ngx_conf_t *cf,
    ngx_http_privacypass_loc_conf_t *conf);
const char *ngx_http_privacypass_type_name(uint16_t type);
ngx_int_t ngx_http_privacypass_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *out);


extern ngx_module_t  ngx_http_privacypass_module;


#endif /* _NGX_HTTP_PRIVACYPASS_MODULE_H_INCLUDED_ */
