
/*
 * ngx_http_privacypass_module: Privacy Pass (RFC 9577 / RFC 9578, token
 * type 2, Blind RSA 2048) on an nginx location.
 *
 * A request without a token is answered 401 with a PrivateToken challenge.
 * A request with a token is checked in-process with libprivacypass (one
 * PrivateToken credential, a challenge this location could have issued, the
 * issuer's signature) and then spent through a subrequest to an internal
 * location that proxies to privacypassd's /api/redeem, so that the daemon's
 * store decides "exactly once" for every worker and every nginx host, and the
 * event loop never waits on the network.  See README.md for the directives.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <privacypass.h>

#include "ngx_http_privacypass_parse.h"


#define NGX_HTTP_PRIVACYPASS_CONTEXT_PER_REQUEST  0
#define NGX_HTTP_PRIVACYPASS_CONTEXT_NONE         1

/* keys offered in one WWW-Authenticate header */
#define NGX_HTTP_PRIVACYPASS_MAX_KEYS             8

#define NGX_HTTP_PRIVACYPASS_MAX_FILE             (1024 * 1024)
#define NGX_HTTP_PRIVACYPASS_SECRET_LEN           32


static ngx_str_t  ngx_http_privacypass_status_names[] = {
    ngx_null_string,
    ngx_string("missing"),
    ngx_string("invalid"),
    ngx_string("spent"),
    ngx_string("valid"),
    ngx_string("error")
};


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


static ngx_int_t ngx_http_privacypass_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_privacypass_check(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx);
static ngx_int_t ngx_http_privacypass_redeem(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx,
    u_char *token, size_t token_len, ngx_str_t *challenge);
static ngx_int_t ngx_http_privacypass_redeem_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_privacypass_finish(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx);
static ngx_int_t ngx_http_privacypass_unavailable(ngx_http_request_t *r);
static ngx_int_t ngx_http_privacypass_refuse(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx,
    ngx_http_privacypass_status_e status, const char *reason);
static ngx_int_t ngx_http_privacypass_update_challenges(
    ngx_http_privacypass_loc_conf_t *plcf,
    ngx_http_privacypass_main_conf_t *pmcf, time_t now, ngx_log_t *log);
static ngx_int_t ngx_http_privacypass_build_challenge(
    ngx_http_privacypass_loc_conf_t *plcf,
    ngx_http_privacypass_main_conf_t *pmcf, time_t window, ngx_str_t *out,
    u_char *digest, ngx_log_t *log);
static ngx_int_t ngx_http_privacypass_build_header(
    ngx_http_privacypass_loc_conf_t *plcf, ngx_log_t *log);
static ngx_http_privacypass_ctx_t *ngx_http_privacypass_get_ctx(
    ngx_http_request_t *r);
static void ngx_http_privacypass_ctx_cleanup(void *data);
static ngx_int_t ngx_http_privacypass_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_privacypass_key_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static char *ngx_http_privacypass_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_privacypass_read_file(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *out);
static ngx_int_t ngx_http_privacypass_add_spki(ngx_conf_t *cf,
    ngx_http_privacypass_keys_t *keys, ngx_str_t *der);
static void ngx_http_privacypass_keys_cleanup(void *data);
static char *ngx_http_privacypass_redeem_url(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

static ngx_int_t ngx_http_privacypass_add_variables(ngx_conf_t *cf);
static void *ngx_http_privacypass_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_privacypass_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_privacypass_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_privacypass_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_privacypass_init(ngx_conf_t *cf);


static ngx_conf_enum_t  ngx_http_privacypass_contexts[] = {
    { ngx_string("per-request"), NGX_HTTP_PRIVACYPASS_CONTEXT_PER_REQUEST },
    { ngx_string("none"), NGX_HTTP_PRIVACYPASS_CONTEXT_NONE },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_privacypass_commands[] = {

    { ngx_string("privacypass"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_privacypass_loc_conf_t, enable),
      NULL },

    { ngx_string("privacypass_issuer_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_privacypass_loc_conf_t, issuer_name),
      NULL },

    { ngx_string("privacypass_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_privacypass_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("privacypass_origin_info"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_privacypass_loc_conf_t, origin_info),
      NULL },

    { ngx_string("privacypass_redemption_context"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_privacypass_loc_conf_t, context),
      &ngx_http_privacypass_contexts },

    { ngx_string("privacypass_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_privacypass_loc_conf_t, max_age),
      NULL },

    { ngx_string("privacypass_redeem_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_privacypass_redeem_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_privacypass_loc_conf_t, redeem_uri),
      NULL },

    { ngx_string("privacypass_context_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_privacypass_main_conf_t, secret_file),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_privacypass_module_ctx = {
    ngx_http_privacypass_add_variables,    /* preconfiguration */
    ngx_http_privacypass_init,             /* postconfiguration */

    ngx_http_privacypass_create_main_conf, /* create main configuration */
    ngx_http_privacypass_init_main_conf,   /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_privacypass_create_loc_conf,  /* create location configuration */
    ngx_http_privacypass_merge_loc_conf    /* merge location configuration */
};


ngx_module_t  ngx_http_privacypass_module = {
    NGX_MODULE_V1,
    &ngx_http_privacypass_module_ctx,      /* module context */
    ngx_http_privacypass_commands,         /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_privacypass_vars[] = {

    { ngx_string("privacypass_status"), NULL,
      ngx_http_privacypass_status_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("privacypass_token_key_id"), NULL,
      ngx_http_privacypass_key_id_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_privacypass_json = ngx_string("application/json");


/* the access phase */

static ngx_int_t
ngx_http_privacypass_handler(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t               *cln;
    ngx_http_privacypass_ctx_t       *ctx;
    ngx_http_privacypass_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_privacypass_module);

    if (!plcf->enable || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_privacypass_get_ctx(r);

    if (ctx != NULL) {

        if (ctx->redeeming) {
            return NGX_AGAIN;
        }

        if (ctx->redeemed) {
            return ngx_http_privacypass_finish(r, plcf, ctx);
        }

        /*
         * an internal redirect after the decision: a token is spent once
         * per request, so the first answer stands
         */

        if (ctx->status == NGX_HTTP_PRIVACYPASS_VALID) {
            return NGX_OK;
        }

        if (ctx->status == NGX_HTTP_PRIVACYPASS_ERROR) {
            return NGX_HTTP_SERVICE_UNAVAILABLE;
        }

        return ngx_http_privacypass_refuse(r, plcf, ctx, ctx->status, NULL);
    }

    /*
     * the context lives in a pool cleanup as well, so that it survives the
     * internal redirects that reset module contexts (as in the realip module)
     */

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_privacypass_ctx_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_privacypass_ctx_t));
    cln->handler = ngx_http_privacypass_ctx_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_privacypass_module);

    return ngx_http_privacypass_check(r, plcf, ctx);
}


static ngx_int_t
ngx_http_privacypass_check(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx)
{
    ngx_int_t                          rc;
    ngx_uint_t                         match;
    pp_result                          res;
    ngx_table_elt_t                   *h;
    ngx_http_privacypass_token_e       parsed;
    ngx_http_privacypass_main_conf_t  *pmcf;
    ngx_http_privacypass_challenges_t *ch;
    u_char                             token[PP_TOKEN_LEN];

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_privacypass_module);

    if (ngx_http_privacypass_update_challenges(plcf, pmcf, ngx_time(),
                                               r->connection->log)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = r->headers_in.authorization;

    if (h == NULL) {
        return ngx_http_privacypass_refuse(r, plcf, ctx,
                                           NGX_HTTP_PRIVACYPASS_MISSING, NULL);
    }

    /* the token, and whether a challenge this location issued is its own */

    ch = plcf->challenges;

    parsed = ngx_http_privacypass_parse_token(h->value.data, h->value.len,
                                              ch->digest, ch->n, token,
                                              &match);

    if (parsed == NGX_HTTP_PRIVACYPASS_TOKEN_BOUND
        || parsed == NGX_HTTP_PRIVACYPASS_TOKEN_UNBOUND)
    {
        ngx_memcpy(ctx->key_id, token + NGX_HTTP_PRIVACYPASS_KEY_ID_OFFSET,
                   PP_TOKEN_KEY_ID_LEN);
        ctx->has_key_id = 1;
    }

    if (parsed != NGX_HTTP_PRIVACYPASS_TOKEN_BOUND) {
        return ngx_http_privacypass_refuse(r, plcf, ctx,
                   NGX_HTTP_PRIVACYPASS_INVALID,
                   ngx_http_privacypass_token_reason(parsed));
    }

    res = pp_verifier_verify(plcf->keys->verifier, token, PP_TOKEN_LEN,
                             ch->challenge[match].data,
                             ch->challenge[match].len);

    if (res != PP_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "privacypass: token refused: %s", pp_result_str(res));

        return ngx_http_privacypass_refuse(r, plcf, ctx,
                                           NGX_HTTP_PRIVACYPASS_INVALID, NULL);
    }

    rc = ngx_http_privacypass_redeem(r, plcf, ctx, token, PP_TOKEN_LEN,
                                     &ch->challenge[match]);
    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "privacypass: could not start the redemption "
                      "subrequest to \"%V\"", &plcf->redeem_uri);

        ctx->status = NGX_HTTP_PRIVACYPASS_ERROR;
        return ngx_http_privacypass_unavailable(r);
    }

    ctx->redeeming = 1;

    return NGX_AGAIN;
}


/* spend the token: POST the JSON-RPC redeem call in a subrequest */

static ngx_int_t
ngx_http_privacypass_redeem(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx,
    u_char *token, size_t token_len, ngx_str_t *challenge)
{
    size_t                        len;
    ngx_buf_t                    *b;
    ngx_str_t                     src, dst;
    ngx_chain_t                  *cl;
    ngx_table_elt_t              *h;
    ngx_http_request_t           *sr;
    ngx_http_request_body_t      *rb;
    ngx_http_post_subrequest_t   *ps;

    static u_char  head[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"redeem\","
                            "\"params\":{\"token\":\"";
    static u_char  middle[] = "\",\"challenge\":\"";
    static u_char  tail[] = "\"}}";

    len = sizeof(head) - 1 + ngx_base64_encoded_length(token_len)
          + sizeof(middle) - 1 + ngx_base64_encoded_length(challenge->len)
          + sizeof(tail) - 1;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->last, head, sizeof(head) - 1);

    src.data = token;
    src.len = token_len;
    dst.data = b->last;
    ngx_encode_base64url(&dst, &src);
    b->last += dst.len;

    b->last = ngx_cpymem(b->last, middle, sizeof(middle) - 1);

    dst.data = b->last;
    ngx_encode_base64url(&dst, challenge);
    b->last += dst.len;

    b->last = ngx_cpymem(b->last, tail, sizeof(tail) - 1);
    b->last_buf = 1;

    /* base64url without padding: shorter than allocated */
    len = b->last - b->pos;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    rb->bufs = cl;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_privacypass_redeem_done;
    ps->data = ctx;

    if (ngx_http_subrequest(r, &plcf->redeem_uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_WAITED
                            |NGX_HTTP_SUBREQUEST_IN_MEMORY)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->method = NGX_HTTP_POST;
    ngx_str_set(&sr->method_name, "POST");
    sr->request_body = rb;

    /*
     * the subrequest carries its own headers: none of the client's (its
     * Authorization above all) reach the daemon
     */

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    h = ngx_list_push(&sr->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Content-Type");
    h->value = ngx_http_privacypass_json;
    h->lowcase_key = (u_char *) "content-type";
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    sr->headers_in.content_type = h;
    sr->headers_in.content_length = NULL;
    sr->headers_in.content_length_n = len;
    sr->headers_in.chunked = 0;
    sr->headers_in.authorization = NULL;

    return NGX_OK;
}


static ngx_int_t
ngx_http_privacypass_redeem_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_privacypass_ctx_t  *ctx = data;

    ctx->redeeming = 0;
    ctx->redeemed = 1;

    ctx->redeem_status = r->headers_out.status;

    if (ctx->redeem_status == 0 && rc >= NGX_HTTP_OK) {
        ctx->redeem_status = rc;
    }

    if (rc == NGX_ERROR) {
        ctx->redeem_status = 0;
    }

    if (r->out != NULL && r->out->buf != NULL) {
        ctx->redeem_body.data = r->out->buf->pos;
        ctx->redeem_body.len = r->out->buf->last - r->out->buf->pos;
    }

    return rc;
}


/* the daemon answered: map its JSON-RPC answer onto the request's fate */

static ngx_int_t
ngx_http_privacypass_finish(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx)
{
    ngx_http_privacypass_status_e  outcome;

    ctx->redeemed = 0;

    outcome = ngx_http_privacypass_redeem_outcome(ctx->redeem_status,
                                                  ctx->redeem_body.data,
                                                  ctx->redeem_body.len);

    switch (outcome) {

    case NGX_HTTP_PRIVACYPASS_VALID:
        ctx->status = NGX_HTTP_PRIVACYPASS_VALID;
        return NGX_OK;

    case NGX_HTTP_PRIVACYPASS_SPENT:
        return ngx_http_privacypass_refuse(r, plcf, ctx,
                                           NGX_HTTP_PRIVACYPASS_SPENT,
                                           "token already spent");

    case NGX_HTTP_PRIVACYPASS_INVALID:

        /*
         * the checks above let no malformed token through, but a redeemer
         * that disagrees about a token's form still refuses a token, not a
         * request this module could retry
         */

        return ngx_http_privacypass_refuse(r, plcf, ctx,
                   NGX_HTTP_PRIVACYPASS_INVALID,
                   "the redeemer refused the token (unknown or expired "
                   "key, verification failed, or malformed)");

    default:
        break;
    }

    /* fail closed: nothing was recorded, the client may retry later */

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "privacypass: redemption through \"%V\" failed "
                  "(status %ui): answering 503", &plcf->redeem_uri,
                  ctx->redeem_status);

    ctx->status = NGX_HTTP_PRIVACYPASS_ERROR;

    return ngx_http_privacypass_unavailable(r);
}


/*
 * 503 with "Retry-After: 1": nothing was recorded, the same token may be
 * presented again shortly (as privacypassd answers when its store fails)
 */

static ngx_int_t
ngx_http_privacypass_unavailable(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    ngx_str_set(&h->value, "1");
    h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_HTTP_SERVICE_UNAVAILABLE;
}


/* 401 with a fresh challenge */

static ngx_int_t
ngx_http_privacypass_refuse(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx,
    ngx_http_privacypass_status_e status, const char *reason)
{
    u_char                             *p;
    ngx_table_elt_t                    *h;
    ngx_http_privacypass_main_conf_t   *pmcf;
    ngx_http_privacypass_challenges_t  *ch;

    ctx->status = status;

    if (reason != NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "privacypass: token refused: %s", reason);
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_privacypass_module);

    if (ngx_http_privacypass_update_challenges(plcf, pmcf, ngx_time(),
                                               r->connection->log)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ch = plcf->challenges;

    p = ngx_pnalloc(r->pool, ch->www_authenticate.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, ch->www_authenticate.data, ch->www_authenticate.len);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->value.data = p;
    h->value.len = ch->www_authenticate.len;
    h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    r->headers_out.www_authenticate = h;

    return NGX_HTTP_UNAUTHORIZED;
}


/* challenges */

static ngx_int_t
ngx_http_privacypass_update_challenges(ngx_http_privacypass_loc_conf_t *plcf,
    ngx_http_privacypass_main_conf_t *pmcf, time_t now, ngx_log_t *log)
{
    time_t                              window;
    u_char                             *tmp;
    ngx_str_t                           s;
    ngx_http_privacypass_challenges_t  *ch;

    ch = plcf->challenges;

    if (plcf->context == NGX_HTTP_PRIVACYPASS_CONTEXT_NONE) {
        return NGX_OK;
    }

    window = now / plcf->max_age;

    if (window == ch->window) {
        return NGX_OK;
    }

    if (window == ch->window + 1) {

        /* the current challenge becomes the previous one */

        tmp = ch->challenge[1].data;
        ch->challenge[1] = ch->challenge[0];
        ch->challenge[0].data = tmp;
        ngx_memcpy(ch->digest[1], ch->digest[0],
                   NGX_HTTP_PRIVACYPASS_DIGEST_LEN);

    } else {
        s = ch->challenge[1];

        if (ngx_http_privacypass_build_challenge(plcf, pmcf, window - 1, &s,
                                                 ch->digest[1], log)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ch->challenge[1] = s;
    }

    s = ch->challenge[0];

    if (ngx_http_privacypass_build_challenge(plcf, pmcf, window, &s,
                                             ch->digest[0], log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ch->challenge[0] = s;
    ch->window = window;
    ch->n = 2;

    return ngx_http_privacypass_build_header(plcf, log);
}


/*
 * The TokenChallenge of a window into out->data (challenge_cap bytes), and
 * its SHA-256.  With "per-request", redemption_context = HMAC-SHA256(secret,
 * "privacypass-nginx-context-v1" || window || max_age || issuer_name ||
 * origin_info), numbers as 8 bytes big-endian and strings prefixed by their
 * length on 2 bytes: only this nginx (or one sharing its secret) can make it,
 * and it changes every max_age seconds.
 */

static ngx_int_t
ngx_http_privacypass_build_challenge(ngx_http_privacypass_loc_conf_t *plcf,
    ngx_http_privacypass_main_conf_t *pmcf, time_t window, ngx_str_t *out,
    u_char *digest, ngx_log_t *log)
{
    u_char                             *p, *msg;
    size_t                              len, ctx_len;
    uint64_t                            n;
    ngx_uint_t                          i;
    pp_result                           res;
    unsigned int                        mac_len;
    u_char                              context[PP_REDEMPTION_CONTEXT_LEN];

    static u_char  label[] = "privacypass-nginx-context-v1";

    ctx_len = 0;

    if (plcf->context == NGX_HTTP_PRIVACYPASS_CONTEXT_PER_REQUEST) {

        len = sizeof(label) - 1 + 8 + 8 + 2 + plcf->issuer_name.len
              + 2 + plcf->origin_info.len;

        msg = ngx_alloc(len, log);
        if (msg == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(msg, label, sizeof(label) - 1);

        n = (uint64_t) window;
        for (i = 0; i < 8; i++) {
            *p++ = (u_char) (n >> (56 - 8 * i));
        }

        n = (uint64_t) plcf->max_age;
        for (i = 0; i < 8; i++) {
            *p++ = (u_char) (n >> (56 - 8 * i));
        }

        *p++ = (u_char) (plcf->issuer_name.len >> 8);
        *p++ = (u_char) plcf->issuer_name.len;
        p = ngx_cpymem(p, plcf->issuer_name.data, plcf->issuer_name.len);

        *p++ = (u_char) (plcf->origin_info.len >> 8);
        *p++ = (u_char) plcf->origin_info.len;
        p = ngx_cpymem(p, plcf->origin_info.data, plcf->origin_info.len);

        mac_len = sizeof(context);

        if (HMAC(EVP_sha256(), pmcf->secret, sizeof(pmcf->secret), msg,
                 p - msg, context, &mac_len)
            == NULL || mac_len != sizeof(context))
        {
            ngx_free(msg);
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "privacypass: HMAC-SHA256 failed");
            return NGX_ERROR;
        }

        ngx_free(msg);
        ctx_len = sizeof(context);
    }

    res = pp_challenge_encode(PP_TOKEN_TYPE_BLIND_RSA,
                              (const char *) plcf->issuer_name.data,
                              plcf->issuer_name.len,
                              ctx_len ? context : NULL, ctx_len,
                              (const char *) plcf->origin_info.data,
                              plcf->origin_info.len,
                              out->data, plcf->challenges->challenge_cap,
                              &out->len);

    ngx_explicit_memzero(context, sizeof(context));

    if (res != PP_OK) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "privacypass: cannot encode the TokenChallenge: %s",
                      pp_result_str(res));
        return NGX_ERROR;
    }

    if (SHA256(out->data, out->len, digest) == NULL) {
        ngx_log_error(NGX_LOG_ALERT, log, 0, "privacypass: SHA-256 failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* WWW-Authenticate for the current challenge: one challenge per key */

static ngx_int_t
ngx_http_privacypass_build_header(ngx_http_privacypass_loc_conf_t *plcf,
    ngx_log_t *log)
{
    u_char                             *p, *last;
    size_t                              len;
    uint64_t                            max_age;
    ngx_uint_t                          i;
    pp_result                           res;
    ngx_http_privacypass_challenges_t  *ch;

    ch = plcf->challenges;
    p = ch->www_authenticate.data;
    last = p + ch->header_cap;
    max_age = (uint64_t) plcf->max_age;

    for (i = 0; i < plcf->keys->nkeys; i++) {

        if (i > 0) {
            if (last - p < 2) {
                goto too_small;
            }

            *p++ = ','; *p++ = ' ';
        }

        res = pp_challenge_www_authenticate(ch->challenge[0].data,
                                            ch->challenge[0].len,
                                            plcf->keys->spki[i],
                                            PP_PUBLIC_KEY_LEN, &max_age,
                                            (char *) p, last - p, &len);
        if (res == PP_ERR_BUFFER_TOO_SMALL) {
            goto too_small;
        }

        if (res != PP_OK) {
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "privacypass: cannot write WWW-Authenticate: %s",
                          pp_result_str(res));
            return NGX_ERROR;
        }

        p += len;
    }

    ch->www_authenticate.len = p - ch->www_authenticate.data;

    return NGX_OK;

too_small:

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "privacypass: WWW-Authenticate buffer too small");
    return NGX_ERROR;
}


/* context and variables */

static void
ngx_http_privacypass_ctx_cleanup(void *data)
{
    /* the context is found by this handler's address; nothing to free */
}


static ngx_http_privacypass_ctx_t *
ngx_http_privacypass_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_privacypass_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_privacypass_module);

    if (ctx == NULL && (r->main->internal || r->main->filter_finalize)) {
        for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_privacypass_ctx_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r->main, ctx, ngx_http_privacypass_module);
                break;
            }
        }
    }

    return ctx;
}


static ngx_int_t
ngx_http_privacypass_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                   *name;
    ngx_http_privacypass_ctx_t  *ctx;

    ctx = ngx_http_privacypass_get_ctx(r);

    if (ctx == NULL || ctx->status == NGX_HTTP_PRIVACYPASS_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    name = &ngx_http_privacypass_status_names[ctx->status];

    v->len = name->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = name->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_privacypass_key_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                      *p;
    ngx_http_privacypass_ctx_t  *ctx;

    ctx = ngx_http_privacypass_get_ctx(r);

    if (ctx == NULL || !ctx->has_key_id) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 2 * PP_TOKEN_KEY_ID_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_hex_dump(p, ctx->key_id, PP_TOKEN_KEY_ID_LEN);

    v->len = 2 * PP_TOKEN_KEY_ID_LEN;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/* configuration */

static ngx_int_t
ngx_http_privacypass_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *out)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name->data);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name->data);
        goto failed;
    }

    if (ngx_file_size(&fi) <= 0
        || ngx_file_size(&fi) > NGX_HTTP_PRIVACYPASS_MAX_FILE)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is empty or larger than %d bytes",
                           name->data, NGX_HTTP_PRIVACYPASS_MAX_FILE);
        goto failed;
    }

    out->len = (size_t) ngx_file_size(&fi);
    out->data = ngx_pnalloc(cf->temp_pool, out->len + 1);
    if (out->data == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, out->data, out->len);

    if (n == -1 || (size_t) n != out->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%s\" failed", name->data);
        goto failed;
    }

    out->data[out->len] = '\0';

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name->data);
    }

    return NGX_OK;

failed:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name->data);
    }

    return NGX_ERROR;
}


/* an RFC 9578 RSASSA-PSS SubjectPublicKeyInfo, or a 2048-bit rsaEncryption
 * one converted to it, checked by libprivacypass */

static ngx_int_t
ngx_http_privacypass_add_spki(ngx_conf_t *cf,
    ngx_http_privacypass_keys_t *keys, ngx_str_t *der)
{
    u_char        *spki;
    pp_result      res;
    pp_verifier   *v;

    if (keys->nkeys == NGX_HTTP_PRIVACYPASS_MAX_KEYS) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "privacypass: only the first %d keys are offered "
                           "in challenges", NGX_HTTP_PRIVACYPASS_MAX_KEYS);
        return NGX_OK;
    }

    spki = keys->spki[keys->nkeys];

    if (ngx_http_privacypass_spki(der, spki) != NGX_OK) {
        /* not an RSA-2048 key (e.g. a token type 1 key): skipped */
        return NGX_DECLINED;
    }

    v = NULL;
    res = pp_verifier_new_from_spki(spki, PP_PUBLIC_KEY_LEN, &v);
    pp_verifier_free(v);

    if (res != PP_OK) {
        return NGX_DECLINED;
    }

    keys->nkeys++;

    return NGX_OK;
}


static void
ngx_http_privacypass_keys_cleanup(void *data)
{
    ngx_http_privacypass_keys_t  *keys = data;

    pp_verifier_free(keys->verifier);
    keys->verifier = NULL;
}


static char *
ngx_http_privacypass_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_privacypass_loc_conf_t *plcf = conf;

    u_char                           *buf;
    ngx_str_t                        *value, name, text, der;
    pp_result                         res;
    ngx_pool_cleanup_t               *cln;
    ngx_http_privacypass_keys_t      *keys;
    ngx_http_privacypass_key_scan_t   scan;

    if (plcf->keys != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_privacypass_read_file(cf, &name, &text) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    keys = ngx_pcalloc(cf->pool, sizeof(ngx_http_privacypass_keys_t));
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_privacypass_keys_cleanup;
    cln->data = keys;

    buf = ngx_pnalloc(cf->temp_pool, text.len);
    if (buf == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_http_privacypass_key_scan_init(&scan, text.data, text.len, buf);

    /* libprivacypass reads the keys it verifies with, the module those it
     * offers */

    if (scan.directory) {
        res = pp_verifier_new_from_directory((const char *) text.data,
                                             text.len, &keys->verifier);
        if (res != PP_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: \"%V\" is not a usable issuer "
                               "directory: %s", &name, pp_result_str(res));
            return NGX_CONF_ERROR;
        }

    } else {
        res = pp_verifier_new_from_pem((const char *) text.data, text.len,
                                       &keys->verifier);
        if (res != PP_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: \"%V\" holds no usable PUBLIC "
                               "KEY block: %s", &name, pp_result_str(res));
            return NGX_CONF_ERROR;
        }
    }

    while (ngx_http_privacypass_key_scan_next(&scan, &der) == NGX_OK) {
        (void) ngx_http_privacypass_add_spki(cf, keys, &der);
    }

    if (keys->nkeys == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "privacypass: \"%V\" holds no RSA-2048 token "
                           "type 2 key", &name);
        return NGX_CONF_ERROR;
    }

    plcf->keys = keys;

    return NGX_CONF_OK;
}


/*
 * privacypass_redeem_url takes the URI of an internal location that proxies
 * to privacypassd's /api/redeem, or the daemon's URL itself: then, as a
 * shorthand, the module adds to the enclosing server
 *
 *     location = /_privacypass/redeem-<hash of the URL> {
 *         internal;
 *         proxy_pass URL;
 *         proxy_connect_timeout 2s; proxy_send_timeout 10s;
 *         proxy_read_timeout 10s;
 *     }
 *
 * parsed by nginx's own configuration parser, exactly as if written there.
 */

static char *
ngx_http_privacypass_redeem_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_privacypass_loc_conf_t *plcf = conf;

    char                              *rv;
    u_char                            *p, *snippet;
    size_t                             len;
    ngx_str_t                         *value, url, uri;
    ngx_buf_t                          buf;
    ngx_uint_t                         i;
    ngx_conf_t                         save;
    ngx_conf_file_t                    conf_file;
    ngx_http_core_srv_conf_t          *cscf;
    ngx_http_privacypass_generated_t  *g;
    ngx_http_privacypass_main_conf_t  *pmcf;
    u_char                             digest[SHA256_DIGEST_LENGTH];

    static u_char  prefix[] = "/_privacypass/redeem-";

    if (plcf->redeem_uri.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    url = value[1];

    if (url.len > 0 && url.data[0] == '/') {
        plcf->redeem_uri = url;
        return NGX_CONF_OK;
    }

    if (!(url.len > 7 && ngx_strncasecmp(url.data, (u_char *) "http://", 7)
                         == 0)
        && !(url.len > 8
             && ngx_strncasecmp(url.data, (u_char *) "https://", 8) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "privacypass_redeem_url \"%V\": give the URL of "
                           "privacypassd's /api/redeem (http://HOST:PORT/"
                           "api/redeem) or the URI of an internal location "
                           "proxying to it", &url);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < url.len; i++) {
        if (url.data[i] <= ' ' || url.data[i] >= 0x7f
            || ngx_strchr("\"'\\;{}$#", url.data[i]) != NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass_redeem_url \"%V\": unexpected "
                               "character in the URL", &url);
            return NGX_CONF_ERROR;
        }
    }

    if (cf->cmd_type == NGX_HTTP_MAIN_CONF) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "privacypass_redeem_url with a URL belongs in a "
                           "server or location block; at the http level, "
                           "give the URI of an internal location");
        return NGX_CONF_ERROR;
    }

    if (cf->conf_file == NULL || cf->conf_file->file.fd == NGX_INVALID_FILE) {
        return "with a URL must be in a configuration file";
    }

    if (SHA256(url.data, url.len, digest) == NULL) {
        return "cannot hash the URL";
    }

    uri.len = sizeof(prefix) - 1 + 16;
    uri.data = ngx_pnalloc(cf->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(uri.data, prefix, sizeof(prefix) - 1);
    ngx_hex_dump(p, digest, 8);

    plcf->redeem_uri = uri;

    /* one location per URL and server */

    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);
    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_privacypass_module);

    g = pmcf->generated.elts;

    for (i = 0; i < pmcf->generated.nelts; i++) {
        if (g[i].server == cscf
            && g[i].uri.len == uri.len
            && ngx_memcmp(g[i].uri.data, uri.data, uri.len) == 0)
        {
            return NGX_CONF_OK;
        }
    }

    g = ngx_array_push(&pmcf->generated);
    if (g == NULL) {
        return NGX_CONF_ERROR;
    }

    g->server = cscf;
    g->uri = uri;

    len = sizeof("location = ") - 1 + uri.len
          + sizeof(" { internal; proxy_pass ") - 1 + url.len
          + sizeof("; proxy_connect_timeout 2s; proxy_send_timeout 10s;"
                   " proxy_read_timeout 10s; } }") - 1;

    snippet = ngx_pnalloc(cf->temp_pool, len);
    if (snippet == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(snippet, "location = ", sizeof("location = ") - 1);
    p = ngx_cpymem(p, uri.data, uri.len);
    p = ngx_cpymem(p, " { internal; proxy_pass ",
                   sizeof(" { internal; proxy_pass ") - 1);
    p = ngx_cpymem(p, url.data, url.len);
    p = ngx_cpymem(p, "; proxy_connect_timeout 2s; proxy_send_timeout 10s;"
                      " proxy_read_timeout 10s; } }",
                   sizeof("; proxy_connect_timeout 2s; proxy_send_timeout 10s;"
                          " proxy_read_timeout 10s; } }") - 1);

    /*
     * parse it in the server's context, from a buffer that stands for a
     * file whose end has been reached: the final "}" closes the block
     */

    ngx_memzero(&buf, sizeof(ngx_buf_t));
    buf.start = snippet;
    buf.pos = snippet;
    buf.last = p;
    buf.end = p;
    buf.temporary = 1;

    ngx_memzero(&conf_file, sizeof(ngx_conf_file_t));
    conf_file.file.fd = cf->conf_file->file.fd;
    conf_file.file.name = cf->conf_file->file.name;
    conf_file.file.log = cf->log;
    conf_file.buffer = &buf;
    conf_file.line = cf->conf_file->line;

    save = *cf;

    cf->conf_file = &conf_file;
    cf->ctx = cscf->ctx;
    cf->cmd_type = NGX_HTTP_SRV_CONF;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    return rv;
}


static ngx_int_t
ngx_http_privacypass_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_privacypass_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_privacypass_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_privacypass_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_privacypass_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     pmcf->secret_file = { 0, NULL };
     */

    if (ngx_array_init(&pmcf->generated, cf->pool, 4,
                       sizeof(ngx_http_privacypass_generated_t))
        != NGX_OK)
    {
        return NULL;
    }

    return pmcf;
}


static void
ngx_http_privacypass_secret_cleanup(void *data)
{
    ngx_explicit_memzero(data, NGX_HTTP_PRIVACYPASS_SECRET_LEN);
}


static char *
ngx_http_privacypass_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_privacypass_main_conf_t *pmcf = conf;

    ngx_str_t            name, text;
    unsigned int         len;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_privacypass_secret_cleanup;
    cln->data = pmcf->secret;

    if (pmcf->secret_file.len == 0) {

        /*
         * made here, in the master, at configuration time: every worker
         * of this configuration shares it; a reload draws a new one
         */

        if (RAND_bytes(pmcf->secret, sizeof(pmcf->secret)) != 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: RAND_bytes() failed");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    name = pmcf->secret_file;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_privacypass_read_file(cf, &name, &text) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (text.len < NGX_HTTP_PRIVACYPASS_SECRET_LEN) {
        ngx_explicit_memzero(text.data, text.len);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "privacypass_context_secret \"%V\" must hold at "
                           "least %d bytes", &name,
                           NGX_HTTP_PRIVACYPASS_SECRET_LEN);
        return NGX_CONF_ERROR;
    }

    /* the file's bytes, whatever their length, hashed into the key */

    len = sizeof(pmcf->secret);

    if (EVP_Digest(text.data, text.len, pmcf->secret, &len, EVP_sha256(),
                   NULL)
        != 1)
    {
        ngx_explicit_memzero(text.data, text.len);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "privacypass: SHA-256 failed");
        return NGX_CONF_ERROR;
    }

    ngx_explicit_memzero(text.data, text.len);

    return NGX_CONF_OK;
}


static void *
ngx_http_privacypass_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_privacypass_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_privacypass_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->issuer_name = { 0, NULL };
     *     conf->origin_info = { 0, NULL };
     *     conf->redeem_uri = { 0, NULL };
     *     conf->challenges = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->context = NGX_CONF_UNSET_UINT;
    conf->max_age = NGX_CONF_UNSET;
    conf->keys = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_privacypass_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_privacypass_loc_conf_t *prev = parent;
    ngx_http_privacypass_loc_conf_t *conf = child;

    size_t                              len;
    uint64_t                            max_age;
    ngx_uint_t                          i;
    pp_result                           res;
    ngx_http_privacypass_main_conf_t   *pmcf;
    ngx_http_privacypass_challenges_t  *ch;
    u_char                              zero[PP_REDEMPTION_CONTEXT_LEN];

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->issuer_name, prev->issuer_name, "");
    ngx_conf_merge_str_value(conf->origin_info, prev->origin_info, "");
    ngx_conf_merge_uint_value(conf->context, prev->context,
                              NGX_HTTP_PRIVACYPASS_CONTEXT_PER_REQUEST);
    ngx_conf_merge_sec_value(conf->max_age, prev->max_age, 600);
    ngx_conf_merge_str_value(conf->redeem_uri, prev->redeem_uri, "");
    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    if (conf->issuer_name.len == 0) {
        return "privacypass is on without privacypass_issuer_name";
    }

    if (conf->keys == NULL) {
        return "privacypass is on without privacypass_keys";
    }

    if (conf->redeem_uri.len == 0) {
        return "privacypass is on without privacypass_redeem_url: "
               "tokens could not be spent";
    }

    if (conf->max_age <= 0) {
        return "privacypass_max_age must be at least 1s";
    }

    if (conf->issuer_name.len > 65535 || conf->origin_info.len > 65535) {
        return "privacypass_issuer_name and privacypass_origin_info "
               "take at most 65535 bytes";
    }

    /* a location inheriting the same settings shares their challenges */

    if (prev->challenges != NULL
        && prev->keys == conf->keys
        && prev->context == conf->context
        && prev->max_age == conf->max_age
        && prev->issuer_name.data == conf->issuer_name.data
        && prev->origin_info.data == conf->origin_info.data)
    {
        conf->challenges = prev->challenges;
        return NGX_CONF_OK;
    }

    ch = ngx_pcalloc(cf->pool, sizeof(ngx_http_privacypass_challenges_t));
    if (ch == NULL) {
        return NGX_CONF_ERROR;
    }

    conf->challenges = ch;

    ch->challenge_cap = 2 + 2 + conf->issuer_name.len + 1
                        + PP_REDEMPTION_CONTEXT_LEN + 2 + conf->origin_info.len;

    for (i = 0; i < 2; i++) {
        ch->challenge[i].data = ngx_pnalloc(cf->pool, ch->challenge_cap);
        if (ch->challenge[i].data == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    /* the header's size: the same for every window (a fixed-size context) */

    ngx_memzero(zero, sizeof(zero));

    res = pp_challenge_encode(PP_TOKEN_TYPE_BLIND_RSA,
                              (const char *) conf->issuer_name.data,
                              conf->issuer_name.len,
                              zero,
                              conf->context
                              == NGX_HTTP_PRIVACYPASS_CONTEXT_PER_REQUEST
                              ? sizeof(zero) : 0,
                              (const char *) conf->origin_info.data,
                              conf->origin_info.len,
                              ch->challenge[0].data, ch->challenge_cap,
                              &ch->challenge[0].len);
    if (res != PP_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "privacypass: cannot encode a TokenChallenge for "
                           "\"%V\": %s", &conf->issuer_name,
                           pp_result_str(res));
        return NGX_CONF_ERROR;
    }

    max_age = (uint64_t) conf->max_age;
    ch->header_cap = 0;

    for (i = 0; i < conf->keys->nkeys; i++) {
        len = 0;
        res = pp_challenge_www_authenticate(ch->challenge[0].data,
                                            ch->challenge[0].len,
                                            conf->keys->spki[i],
                                            PP_PUBLIC_KEY_LEN, &max_age,
                                            NULL, 0, &len);
        if (res != PP_ERR_BUFFER_TOO_SMALL && res != PP_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: cannot write WWW-Authenticate: "
                               "%s", pp_result_str(res));
            return NGX_CONF_ERROR;
        }

        ch->header_cap += len + 2;
    }

    ch->www_authenticate.data = ngx_pnalloc(cf->pool, ch->header_cap);
    if (ch->www_authenticate.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ch->window = -2;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_privacypass_module);

    if (conf->context == NGX_HTTP_PRIVACYPASS_CONTEXT_NONE) {

        if (ngx_http_privacypass_build_challenge(conf, pmcf, 0,
                                                 &ch->challenge[0],
                                                 ch->digest[0], cf->log)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        ch->n = 1;

        if (ngx_http_privacypass_build_header(conf, cf->log) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    /*
     * per-request: the secret is known only once the http block is parsed
     * (init_main_conf runs before the merge), so build the challenges now to
     * surface errors; workers refresh them as time goes by
     */

    if (ngx_http_privacypass_update_challenges(conf, pmcf, ngx_time(),
                                               cf->log)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_privacypass_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_privacypass_handler;

    return NGX_OK;
}
