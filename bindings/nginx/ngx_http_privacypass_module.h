
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
 *   ngx_http_privacypass_keys.c       privacypass_keys: the issuer's keys
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

/* keys offered in one WWW-Authenticate header */
#define NGX_HTTP_PRIVACYPASS_MAX_KEYS             8

#define NGX_HTTP_PRIVACYPASS_MAX_FILE             (1024 * 1024)
#define NGX_HTTP_PRIVACYPASS_SECRET_LEN           32


typedef struct {
    pp_verifier                  *verifier;
    ngx_uint_t                    nkeys;
    u_char                        spki[NGX_HTTP_PRIVACYPASS_MAX_KEYS]
                                      [PP_PUBLIC_KEY_LEN];
} ngx_http_privacypass_keys_t;


/*
 * The challenges a location accepts: for "per-request" those of the current
 * and the previous time window, for "none" the one fixed challenge.  Each
 * worker keeps its own copy (the configuration is copied on fork) and
 * recomputes it when the window moves on.
 */
typedef struct {
    time_t                        window;
    ngx_uint_t                    n;
    ngx_str_t                     challenge[2];
    u_char                        digest[2][NGX_HTTP_PRIVACYPASS_DIGEST_LEN];
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
    ngx_http_privacypass_challenges_t  *challenges;
} ngx_http_privacypass_loc_conf_t;


typedef struct {
    ngx_http_privacypass_status_e  status;
    unsigned                      redeeming:1;
    unsigned                      redeemed:1;
    unsigned                      has_key_id:1;
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
ngx_int_t ngx_http_privacypass_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *out);


extern ngx_module_t  ngx_http_privacypass_module;


#endif /* _NGX_HTTP_PRIVACYPASS_MODULE_H_INCLUDED_ */
