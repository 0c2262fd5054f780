
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
    ngx_http_privacypass_main_conf_t *pmcf, uint16_t type, time_t window,
    ngx_str_t *out, u_char *digest, ngx_log_t *log);
static ngx_int_t ngx_http_privacypass_build_header(
    ngx_http_privacypass_loc_conf_t *plcf, ngx_log_t *log);
static void ngx_http_privacypass_choose_offers(
    ngx_http_privacypass_challenges_t *ch, time_t now);


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
 * merged and differ from the enclosing level's: the keys it offers (of its
 * token types, in their order, at most NGX_HTTP_PRIVACYPASS_MAX_KEYS), what
 * it accepts of each type, the room every window needs, and the challenges
 * of now.
 */

char *
ngx_http_privacypass_init_challenges(ngx_conf_t *cf,
    ngx_http_privacypass_loc_conf_t *conf)
{
    size_t                              len;
    uint16_t                            type;
    uint64_t                            max_age;
    ngx_uint_t                          i, j, t, skipped;
    pp_result                           res;
    ngx_http_privacypass_key_t         *k;
    ngx_http_privacypass_main_conf_t   *pmcf;
    ngx_http_privacypass_challenges_t  *ch;
    u_char                              zero[PP_REDEMPTION_CONTEXT_LEN];

    ch = ngx_pcalloc(cf->pool, sizeof(ngx_http_privacypass_challenges_t));
    if (ch == NULL) {
        return NGX_CONF_ERROR;
    }

    conf->challenges = ch;
    ch->ntypes = conf->types->n;

    /* the keys offered, type after type */

    skipped = 0;

    for (t = 0; t < ch->ntypes; t++) {
        type = conf->types->type[t];

        ch->accept[t].type = type;
        ch->accept[t].digest = ch->digest[t];
        ch->accept[t].key_id = ch->key_id[t];

        for (j = 0; j < conf->keys->nkeys; j++) {
            k = &conf->keys->key[j];

            if (k->type != type) {
                continue;
            }

            if (ch->noffer == NGX_HTTP_PRIVACYPASS_MAX_KEYS) {
                skipped++;
                continue;
            }

            ch->offer[ch->noffer] = k;
            ch->offer_type[ch->noffer] = t;
            ch->noffer++;

            ngx_memcpy(ch->key_id[t][ch->accept[t].nkeys], k->key_id,
                       PP_TOKEN_KEY_ID_LEN);
            ch->accept[t].nkeys++;
        }

        if (ch->accept[t].nkeys == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: no room left for the keys of "
                               "token type %d (%s) of \"%V\": a location "
                               "offers at most %d keys", (int) type,
                               ngx_http_privacypass_type_name(type),
                               &conf->keys->name,
                               NGX_HTTP_PRIVACYPASS_MAX_KEYS);
            return NGX_CONF_ERROR;
        }
    }

    if (skipped) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "privacypass: only the first %d keys of \"%V\" "
                           "are offered and accepted here, %ui left out",
                           NGX_HTTP_PRIVACYPASS_MAX_KEYS, &conf->keys->name,
                           skipped);
    }

    ch->challenge_cap = 2 + 2 + conf->issuer_name.len + 1
                        + PP_REDEMPTION_CONTEXT_LEN + 2 + conf->origin_info.len;

    for (t = 0; t < ch->ntypes; t++) {
        for (i = 0; i < 2; i++) {
            ch->challenge[t][i].data = ngx_pnalloc(cf->pool,
                                                   ch->challenge_cap);
            if (ch->challenge[t][i].data == NULL) {
                return NGX_CONF_ERROR;
            }
        }
    }

    /* the header's size: the same for every window (a fixed-size context;
     * a TokenChallenge's size does not depend on its type) */

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
                              ch->challenge[0][0].data, ch->challenge_cap,
                              &ch->challenge[0][0].len);
    if (res != PP_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "privacypass: cannot encode a TokenChallenge for "
                           "\"%V\": %s", &conf->issuer_name,
                           pp_result_str(res));
        return NGX_CONF_ERROR;
    }

    max_age = (uint64_t) conf->max_age;
    ch->header_cap = 0;

    for (i = 0; i < ch->noffer; i++) {
        len = 0;
        res = pp_challenge_www_authenticate(ch->challenge[0][0].data,
                                            ch->challenge[0][0].len,
                                            ch->offer[i]->key,
                                            ch->offer[i]->len, &max_age,
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

        for (t = 0; t < ch->ntypes; t++) {
            if (ngx_http_privacypass_build_challenge(conf, pmcf,
                                                     conf->types->type[t], 0,
                                                     &ch->challenge[t][0],
                                                     ch->digest[t][0],
                                                     cf->log)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            ch->accept[t].n = 1;
        }

        ch->n = 1;

        ngx_http_privacypass_choose_offers(ch, ngx_time());

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


/*
 * the challenges of the window of now, and of the one before, of each type;
 * the keys offered, once one has started since they were chosen
 */

ngx_int_t
ngx_http_privacypass_update_challenges(ngx_http_privacypass_loc_conf_t *plcf,
    ngx_http_privacypass_main_conf_t *pmcf, time_t now, ngx_log_t *log)
{
    time_t                              window;
    u_char                             *tmp;
    uint16_t                            type;
    ngx_str_t                           s;
    ngx_uint_t                          t, started;
    ngx_http_privacypass_challenges_t  *ch;

    ch = plcf->challenges;

    started = now >= ch->next_start;

    if (started) {
        ngx_http_privacypass_choose_offers(ch, now);
    }

    if (plcf->context == NGX_HTTP_PRIVACYPASS_CONTEXT_NONE) {
        return started ? ngx_http_privacypass_build_header(plcf, log) : NGX_OK;
    }

    window = now / plcf->max_age;

    if (window == ch->window) {
        return started ? ngx_http_privacypass_build_header(plcf, log) : NGX_OK;
    }

    for (t = 0; t < ch->ntypes; t++) {
        type = plcf->types->type[t];

        if (window == ch->window + 1) {

            /* the current challenge becomes the previous one */

            tmp = ch->challenge[t][1].data;
            ch->challenge[t][1] = ch->challenge[t][0];
            ch->challenge[t][0].data = tmp;
            ngx_memcpy(ch->digest[t][1], ch->digest[t][0],
                       NGX_HTTP_PRIVACYPASS_DIGEST_LEN);

        } else {
            s = ch->challenge[t][1];

            if (ngx_http_privacypass_build_challenge(plcf, pmcf, type,
                                                     window - 1, &s,
                                                     ch->digest[t][1], log)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            ch->challenge[t][1] = s;
        }

        s = ch->challenge[t][0];

        if (ngx_http_privacypass_build_challenge(plcf, pmcf, type, window, &s,
                                                 ch->digest[t][0], log)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ch->challenge[t][0] = s;
        ch->accept[t].n = 2;
    }

    ch->window = window;
    ch->n = 2;

    return ngx_http_privacypass_build_header(plcf, log);
}


/*
 * The TokenChallenge of a token type and a window into out->data
 * (challenge_cap bytes), and its SHA-256.  The context does not depend on
 * the type: the challenges of one window differ in their token_type only.  With "per-request", redemption_context = HMAC-SHA256(secret,
 * "privacypass-nginx-context-v1" || window || max_age || issuer_name ||
 * origin_info), numbers as 8 bytes big-endian and strings prefixed by their
 * length on 2 bytes: only this nginx (or one sharing its secret) can make it,
 * and it changes every max_age seconds.
 */

static ngx_int_t
ngx_http_privacypass_build_challenge(ngx_http_privacypass_loc_conf_t *plcf,
    ngx_http_privacypass_main_conf_t *pmcf, uint16_t type, time_t window,
    ngx_str_t *out, u_char *digest, ngx_log_t *log)
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

    res = pp_challenge_encode(type,
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


/* WWW-Authenticate for the current challenges: one challenge per key
 * offered, with the challenge of the key's type */

static ngx_int_t
ngx_http_privacypass_build_header(ngx_http_privacypass_loc_conf_t *plcf,
    ngx_log_t *log)
{
    u_char                             *p, *last;
    size_t                              len;
    uint64_t                            max_age;
    ngx_uint_t                          i, t;
    pp_result                           res;
    ngx_http_privacypass_challenges_t  *ch;

    ch = plcf->challenges;
    p = ch->www_authenticate.data;
    last = p + ch->header_cap;
    max_age = (uint64_t) plcf->max_age;

    for (i = 0; i < ch->noffer; i++) {

        if (!ch->offered[i]) {
            continue;
        }

        if (p > ch->www_authenticate.data) {
            if (last - p < 2) {
                goto too_small;
            }

            *p++ = ','; *p++ = ' ';
        }

        t = ch->offer_type[i];

        res = pp_challenge_www_authenticate(ch->challenge[t][0].data,
                                            ch->challenge[t][0].len,
                                            ch->offer[i]->key,
                                            ch->offer[i]->len, &max_age,
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


/*
 * Of each type, the key offered at now: the first (in the file's order)
 * whose not-before has passed, as a client picks it from the directory; a
 * type whose keys all start later offers the one starting first.  A PEM
 * file's keys have no not-before: the first is offered.  next_start: the
 * first not-before after now, when the choice is made again.
 */

static void
ngx_http_privacypass_choose_offers(ngx_http_privacypass_challenges_t *ch,
    time_t now)
{
    time_t       nb;
    ngx_uint_t   i, t, soonest, found;

    ch->next_start = NGX_MAX_TIME_T_VALUE;

    for (t = 0; t < ch->ntypes; t++) {
        found = 0;
        soonest = ch->noffer;

        for (i = 0; i < ch->noffer; i++) {
            if (ch->offer_type[i] != t) {
                continue;
            }

            nb = ch->offer[i]->not_before;
            ch->offered[i] = 0;

            if (nb > now) {
                if (nb < ch->next_start) {
                    ch->next_start = nb;
                }

                if (soonest == ch->noffer
                    || nb < ch->offer[soonest]->not_before)
                {
                    soonest = i;
                }

                continue;
            }

            if (!found) {
                ch->offered[i] = 1;
                found = 1;
            }
        }

        if (!found && soonest < ch->noffer) {
            ch->offered[soonest] = 1;
        }
    }
}
