
/*
 * ngx_http_privacypass_module: Privacy Pass (RFC 9577 / RFC 9578, token
 * types 2, Blind RSA 2048, and 1 and 5, VOPRF P-384 and ristretto255) on an
 * nginx location.
 *
 * A request without a token is answered 401 with a PrivateToken challenge
 * per key of the location's token types.  A request with a token is checked
 * in-process with libprivacypass (one PrivateToken credential, a type the
 * location accepts, a challenge this location could have issued; for type 2
 * the issuer's signature, for types 1 and 5, which only the issuer can
 * verify, one of the location's keys) and then spent (types 1 and 5 also
 * verified) by privacypassd, through a subrequest to an internal
 * location that proxies to privacypassd's /api/redeem, so that the daemon's
 * store decides "exactly once" for every worker and every nginx host, and the
 * event loop never waits on the network.  See README.md for the directives.
 *
 * This file: the module, its directives and variables, its configuration,
 * and the access phase.  ngx_http_privacypass_module.h lists the others.
 */

#include "ngx_http_privacypass_module.h"


static ngx_str_t  ngx_http_privacypass_status_names[] = {
    ngx_null_string,
    ngx_string("missing"),
    ngx_string("invalid"),
    ngx_string("spent"),
    ngx_string("valid"),
    ngx_string("error")
};


static ngx_int_t ngx_http_privacypass_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_privacypass_check(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx);
static ngx_int_t ngx_http_privacypass_finish(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx);
static ngx_int_t ngx_http_privacypass_unavailable(ngx_http_request_t *r);
static ngx_int_t ngx_http_privacypass_refuse(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx,
    ngx_http_privacypass_status_e status, const char *reason);
static ngx_http_privacypass_ctx_t *ngx_http_privacypass_get_ctx(
    ngx_http_request_t *r);
static void ngx_http_privacypass_ctx_cleanup(void *data);
static ngx_int_t ngx_http_privacypass_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_privacypass_key_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_privacypass_type_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

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

    { ngx_string("privacypass_token_types"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_privacypass_token_types,
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

    { ngx_string("privacypass_token_type"), NULL,
      ngx_http_privacypass_type_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


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
    size_t                             len, token_len;
    uint16_t                           type;
    ngx_int_t                          rc;
    ngx_uint_t                         which, match;
    pp_result                          res;
    ngx_str_t                         *challenge;
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

    /*
     * the token, its type, and whether a challenge this location issued of
     * that type is its own (and, types 1 and 5, a key it offers)
     */

    ch = plcf->challenges;
    token_len = 0;
    type = 0;
    which = 0;
    match = 0;

    parsed = ngx_http_privacypass_parse_token(h->value.data, h->value.len,
                                              ch->accept, ch->ntypes, token,
                                              &token_len, &type, &which,
                                              &match);

    if (ngx_http_privacypass_token_read(parsed)) {
        ctx->type = type;
        ctx->has_type = 1;

        if (pp_token_key_id(token, token_len, ctx->key_id,
                            PP_TOKEN_KEY_ID_LEN, &len)
            == PP_OK)
        {
            ctx->has_key_id = 1;
        }
    }

    if (parsed != NGX_HTTP_PRIVACYPASS_TOKEN_BOUND) {

        if (parsed == NGX_HTTP_PRIVACYPASS_TOKEN_NOT_ACCEPTED) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "privacypass: token refused: a token of type %d "
                          "(%s), which privacypass_token_types does not "
                          "accept here", (int) type,
                          ngx_http_privacypass_type_name(type));

            return ngx_http_privacypass_refuse(r, plcf, ctx,
                                               NGX_HTTP_PRIVACYPASS_INVALID,
                                               NULL);
        }

        return ngx_http_privacypass_refuse(r, plcf, ctx,
                   NGX_HTTP_PRIVACYPASS_INVALID,
                   ngx_http_privacypass_token_reason(parsed));
    }

    challenge = &ch->challenge[which][match];

    /*
     * type 2: the signature, here; types 1 and 5 are verified by the
     * daemon, the only one holding the issuer's private key, when it spends
     * them
     */

    if (type == PP_TOKEN_TYPE_BLIND_RSA) {
        res = pp_verifier_verify(plcf->keys->verifier, token, token_len,
                                 challenge->data, challenge->len);

        if (res != PP_OK) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "privacypass: token refused: %s",
                          pp_result_str(res));

            return ngx_http_privacypass_refuse(r, plcf, ctx,
                                               NGX_HTTP_PRIVACYPASS_INVALID,
                                               NULL);
        }
    }

    rc = ngx_http_privacypass_redeem(r, plcf, ctx, token, token_len,
                                     challenge);
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


/* the daemon has answered: the request's fate */

static ngx_int_t
ngx_http_privacypass_finish(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx)
{
    switch (ngx_http_privacypass_redeemed(r, plcf, ctx)) {

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

        /* fail closed: nothing shows the token spent, the client may retry */

        ctx->status = NGX_HTTP_PRIVACYPASS_ERROR;
        return ngx_http_privacypass_unavailable(r);
    }
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


/* the token's type, in decimal (RFC 9578's 2, 1 or 5) */

static ngx_int_t
ngx_http_privacypass_type_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                      *p;
    ngx_http_privacypass_ctx_t  *ctx;

    ctx = ngx_http_privacypass_get_ctx(r);

    if (ctx == NULL || !ctx->has_type) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", (ngx_uint_t) ctx->type) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
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


static char *
ngx_http_privacypass_init_main_conf(ngx_conf_t *cf, void *conf)
{
    return ngx_http_privacypass_init_secret(cf, conf);
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
    conf->types = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_privacypass_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_privacypass_loc_conf_t *prev = parent;
    ngx_http_privacypass_loc_conf_t *conf = child;

    static ngx_http_privacypass_types_t  blind_rsa = {
        1, { PP_TOKEN_TYPE_BLIND_RSA, 0, 0 }
    };

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->issuer_name, prev->issuer_name, "");
    ngx_conf_merge_str_value(conf->origin_info, prev->origin_info, "");
    ngx_conf_merge_uint_value(conf->context, prev->context,
                              NGX_HTTP_PRIVACYPASS_CONTEXT_PER_REQUEST);
    ngx_conf_merge_sec_value(conf->max_age, prev->max_age, 600);
    ngx_conf_merge_str_value(conf->redeem_uri, prev->redeem_uri, "");
    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);
    ngx_conf_merge_ptr_value(conf->types, prev->types, &blind_rsa);

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

    if (ngx_http_privacypass_check_keys(cf, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
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
        && prev->types == conf->types
        && prev->context == conf->context
        && prev->max_age == conf->max_age
        && prev->issuer_name.data == conf->issuer_name.data
        && prev->origin_info.data == conf->origin_info.data)
    {
        conf->challenges = prev->challenges;
        return NGX_CONF_OK;
    }

    return ngx_http_privacypass_init_challenges(cf, conf);
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

