
/*
 * The challenges of a location: the TokenChallenge of each time window, its
 * SHA-256 (what a token's challenge_digest must equal), the WWW-Authenticate
 * value that offers it, and the secret the "per-request" redemption contexts
 * are derived from.  See README.md, "per-request challenges, precisely".
 */

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ngx_http_privacypass_module.h"


static ngx_int_t ngx_http_privacypass_build_challenge(
    ngx_http_privacypass_loc_conf_t *plcf,
    ngx_http_privacypass_main_conf_t *pmcf, time_t window, ngx_str_t *out,
    u_char *digest, ngx_log_t *log);
static ngx_int_t ngx_http_privacypass_build_header(
    ngx_http_privacypass_loc_conf_t *plcf, ngx_log_t *log);


static void
ngx_http_privacypass_secret_cleanup(void *data)
{
    ngx_explicit_memzero(data, NGX_HTTP_PRIVACYPASS_SECRET_LEN);
}


/* the secret of privacypass_context_secret, or a random one */

char *
ngx_http_privacypass_init_secret(ngx_conf_t *cf,
    ngx_http_privacypass_main_conf_t *pmcf)
{
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


/*
 * The challenges of a location with privacypass on, once its settings are
 * merged and differ from the enclosing level's: the room every window needs,
 * and the challenges of now.
 */

char *
ngx_http_privacypass_init_challenges(ngx_conf_t *cf,
    ngx_http_privacypass_loc_conf_t *conf)
{
    size_t                              len;
    uint64_t                            max_age;
    ngx_uint_t                          i;
    pp_result                           res;
    ngx_http_privacypass_main_conf_t   *pmcf;
    ngx_http_privacypass_challenges_t  *ch;
    u_char                              zero[PP_REDEMPTION_CONTEXT_LEN];

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


/* the challenges of the window of now, and of the one before */

ngx_int_t
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
