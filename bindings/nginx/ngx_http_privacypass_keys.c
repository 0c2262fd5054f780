
/*
 * privacypass_keys: the issuer's public keys, from an RFC 9578 issuer
 * directory (types 2, 1 and 5) or a PEM file (type 2), read by
 * libprivacypass: a verifier for the type 2 tokens, and every key in its
 * RFC 9578 form for the challenges' token-key, with its token_key_id and
 * not-before.
 * privacypass_token_types: which of them a location offers and accepts.
 */

#include "ngx_http_privacypass_module.h"


static void ngx_http_privacypass_keys_cleanup(void *data);


/* a file of at most NGX_HTTP_PRIVACYPASS_MAX_FILE bytes, NUL-terminated, in
 * cf->temp_pool */

ngx_int_t
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


static void
ngx_http_privacypass_keys_cleanup(void *data)
{
    ngx_http_privacypass_keys_t  *keys = data;

    pp_verifier_free(keys->verifier);
    keys->verifier = NULL;
}


/* the token types, in the order the keys of a file are kept */

static uint16_t  ngx_http_privacypass_types[NGX_HTTP_PRIVACYPASS_NTYPES] = {
    PP_TOKEN_TYPE_BLIND_RSA,
    PP_TOKEN_TYPE_VOPRF_P384,
    PP_TOKEN_TYPE_VOPRF_RISTRETTO255
};

static ngx_str_t  ngx_http_privacypass_type_names[NGX_HTTP_PRIVACYPASS_NTYPES]
    = {
    ngx_string("blind-rsa-2048"),
    ngx_string("voprf-p384"),
    ngx_string("voprf-ristretto255")
};


static ngx_uint_t
ngx_http_privacypass_type_index(uint16_t type)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_PRIVACYPASS_NTYPES; i++) {
        if (ngx_http_privacypass_types[i] == type) {
            return i;
        }
    }

    return NGX_HTTP_PRIVACYPASS_NTYPES;
}


const char *
ngx_http_privacypass_type_name(uint16_t type)
{
    ngx_uint_t  i;

    i = ngx_http_privacypass_type_index(type);

    return i < NGX_HTTP_PRIVACYPASS_NTYPES
           ? (const char *) ngx_http_privacypass_type_names[i].data
           : "unknown";
}


/*
 * The keys of one type into keys->key[], at most
 * NGX_HTTP_PRIVACYPASS_MAX_KEYS of them, from the keys written one after the
 * other in p (len bytes, each pp_token_key_len(type) bytes)
 */

static ngx_int_t
ngx_http_privacypass_add_keys(ngx_conf_t *cf,
    ngx_http_privacypass_keys_t *keys, ngx_str_t *text, uint16_t type,
    u_char *p, size_t len)
{
    size_t                       klen, n, id_len, nb_len;
    uint64_t                    *nb;
    pp_result                    res;
    ngx_uint_t                   i;
    ngx_http_privacypass_key_t  *k;

    klen = pp_token_key_len(type);

    if (klen == 0 || len % klen != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "privacypass: \"%V\": keys of type %d of an "
                           "unexpected length", &keys->name, (int) type);
        return NGX_ERROR;
    }

    n = len / klen;

    /* each key's not-before, in the same order (a PEM file has none) */

    nb = NULL;

    if (keys->directory) {
        nb = ngx_pcalloc(cf->temp_pool, n * sizeof(uint64_t));
        if (nb == NULL) {
            return NGX_ERROR;
        }

        res = pp_directory_not_before((const char *) text->data, text->len,
                                      type, nb, n, &nb_len);
        if (res != PP_OK || nb_len != n) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: \"%V\": cannot read the "
                               "not-before of the keys of type %d: %s",
                               &keys->name, (int) type,
                               pp_result_str(res != PP_OK
                                             ? res : PP_ERR_INVALID_INPUT));
            return NGX_ERROR;
        }
    }

    if (n > NGX_HTTP_PRIVACYPASS_MAX_KEYS) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "privacypass: \"%V\": only the first %d keys of "
                           "token type %d are used", &keys->name,
                           NGX_HTTP_PRIVACYPASS_MAX_KEYS, (int) type);
        n = NGX_HTTP_PRIVACYPASS_MAX_KEYS;
    }

    for (i = 0; i < n; i++) {
        k = &keys->key[keys->nkeys];

        k->type = type;
        k->len = klen;
        k->key = ngx_pnalloc(cf->pool, klen);
        if (k->key == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(k->key, p + i * klen, klen);

        k->not_before = 0;

        if (nb != NULL) {
            if (nb[i] > (uint64_t) NGX_MAX_TIME_T_VALUE) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "privacypass: \"%V\": a key of type %d "
                                   "has a not-before out of range",
                                   &keys->name, (int) type);
                return NGX_ERROR;
            }

            k->not_before = (time_t) nb[i];
        }

        if (pp_token_key_id_of_key(k->key, klen, k->key_id,
                                   PP_TOKEN_KEY_ID_LEN, &id_len)
            != PP_OK || id_len != PP_TOKEN_KEY_ID_LEN)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: \"%V\": cannot compute a key's "
                               "token_key_id", &keys->name);
            return NGX_ERROR;
        }

        keys->nkeys++;
    }

    return NGX_OK;
}


/* the keys of one type of a directory, or of a PEM text (type 2) */

static pp_result
ngx_http_privacypass_read_keys(ngx_conf_t *cf, ngx_str_t *text,
    ngx_uint_t directory, uint16_t type, u_char **out, size_t *out_len)
{
    size_t     len;
    u_char    *p;
    pp_result  res;

    len = 0;
    *out = NULL;
    *out_len = 0;

    res = directory
          ? pp_directory_token_keys((const char *) text->data, text->len,
                                    type, NULL, 0, &len)
          : pp_pem_public_keys((const char *) text->data, text->len, NULL, 0,
                               &len);

    if (res == PP_OK) {
        /* none of that type */
        return PP_OK;
    }

    if (res != PP_ERR_BUFFER_TOO_SMALL) {
        return res;
    }

    p = ngx_pnalloc(cf->temp_pool, len);
    if (p == NULL) {
        return PP_ERR_INTERNAL;
    }

    res = directory
          ? pp_directory_token_keys((const char *) text->data, text->len,
                                    type, p, len, &len)
          : pp_pem_public_keys((const char *) text->data, text->len, p, len,
                               &len);

    if (res == PP_OK) {
        *out = p;
        *out_len = len;
    }

    return res;
}


/*
 * privacypass_keys FILE: a directory's keys of types 2, 1 and 5, or a PEM
 * file's type 2 keys; which of them a location uses depends on its
 * privacypass_token_types (ngx_http_privacypass_check_keys()).
 */

char *
ngx_http_privacypass_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_privacypass_loc_conf_t *plcf = conf;

    size_t                        len;
    u_char                       *p;
    ngx_str_t                    *value, name, text;
    pp_result                     res, failed;
    ngx_uint_t                    i, directory;
    const char                   *kind;
    ngx_pool_cleanup_t           *cln;
    ngx_http_privacypass_keys_t  *keys;

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

    keys->name = name;

    directory = ngx_http_privacypass_key_file_is_directory(text.data,
                                                           text.len);
    keys->directory = directory ? 1 : 0;

    kind = directory ? "is not a usable issuer directory"
                     : "holds no usable PUBLIC KEY block";

    failed = PP_OK;

    for (i = 0; i < NGX_HTTP_PRIVACYPASS_NTYPES; i++) {

        if (!directory && ngx_http_privacypass_types[i]
                          != PP_TOKEN_TYPE_BLIND_RSA)
        {
            /* PEM: type 2 only */
            keys->res[i] = PP_OK;
            continue;
        }

        res = ngx_http_privacypass_read_keys(cf, &text, directory,
                                             ngx_http_privacypass_types[i],
                                             &p, &len);
        keys->res[i] = res;

        if (res != PP_OK) {
            failed = res;
            continue;
        }

        if (ngx_http_privacypass_add_keys(cf, keys, &text,
                                          ngx_http_privacypass_types[i], p,
                                          len)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    /* the type 2 keys that verify come from the same bytes as those
     * offered: the verifier fails where the reading above does */

    if (keys->res[0] == PP_OK && keys->nkeys > 0
        && keys->key[0].type == PP_TOKEN_TYPE_BLIND_RSA)
    {
        res = directory
              ? pp_verifier_new_from_directory((const char *) text.data,
                                               text.len, &keys->verifier)
              : pp_verifier_new_from_pem((const char *) text.data, text.len,
                                         &keys->verifier);
        if (res != PP_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: \"%V\" %s: %s", &name, kind,
                               pp_result_str(res));
            return NGX_CONF_ERROR;
        }
    }

    if (keys->nkeys == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "privacypass: \"%V\" %s: %s",
                           &name, kind,
                           pp_result_str(failed != PP_OK ? failed
                                                         : PP_ERR_INVALID_KEY));
        return NGX_CONF_ERROR;
    }

    plcf->keys = keys;

    return NGX_CONF_OK;
}


/* privacypass_token_types TYPE ...: 2, 1, 5 or their names, each once */

char *
ngx_http_privacypass_token_types(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_privacypass_loc_conf_t *plcf = conf;

    ngx_int_t                      n;
    ngx_str_t                     *value;
    ngx_uint_t                     i, j, k;
    uint16_t                       type;
    ngx_http_privacypass_types_t  *types;

    if (plcf->types != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    types = ngx_pcalloc(cf->pool, sizeof(ngx_http_privacypass_types_t));
    if (types == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        type = 0;

        for (k = 0; k < NGX_HTTP_PRIVACYPASS_NTYPES; k++) {
            if (value[i].len == ngx_http_privacypass_type_names[k].len
                && ngx_strncasecmp(value[i].data,
                                   ngx_http_privacypass_type_names[k].data,
                                   value[i].len)
                   == 0)
            {
                type = ngx_http_privacypass_types[k];
            }
        }

        if (type == 0) {
            n = ngx_atoi(value[i].data, value[i].len);

            if (n != NGX_ERROR
                && ngx_http_privacypass_type_index((uint16_t) n)
                   < NGX_HTTP_PRIVACYPASS_NTYPES
                && n < 65536)
            {
                type = (uint16_t) n;
            }
        }

        if (type == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass_token_types: unknown token type "
                               "\"%V\" (known: 2 or blind-rsa-2048, 1 or "
                               "voprf-p384, 5 or voprf-ristretto255)",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        for (j = 0; j < types->n; j++) {
            if (types->type[j] == type) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "privacypass_token_types: token type %d "
                                   "(%s) is given twice", (int) type,
                                   ngx_http_privacypass_type_name(type));
                return NGX_CONF_ERROR;
            }
        }

        types->type[types->n++] = type;
    }

    plcf->types = types;

    return NGX_CONF_OK;
}


/*
 * A location with privacypass on: its key file holds keys of each of its
 * token types, read without error, and types 1 and 5 come from a directory
 */

char *
ngx_http_privacypass_check_keys(ngx_conf_t *cf,
    ngx_http_privacypass_loc_conf_t *conf)
{
    uint16_t                      type;
    ngx_uint_t                    i, k, n;
    ngx_http_privacypass_keys_t  *keys;

    keys = conf->keys;

    for (i = 0; i < conf->types->n; i++) {
        type = conf->types->type[i];
        k = ngx_http_privacypass_type_index(type);

        if (!keys->directory && type != PP_TOKEN_TYPE_BLIND_RSA) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: token type %d (%s) needs an "
                               "issuer directory as privacypass_keys, but "
                               "\"%V\" is a PEM file (its keys are of type 2 "
                               "only)", (int) type,
                               ngx_http_privacypass_type_name(type),
                               &keys->name);
            return NGX_CONF_ERROR;
        }

        if (keys->res[k] != PP_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: \"%V\" has no usable keys of "
                               "token type %d (%s): %s", &keys->name,
                               (int) type,
                               ngx_http_privacypass_type_name(type),
                               pp_result_str(keys->res[k]));
            return NGX_CONF_ERROR;
        }

        n = 0;

        for (k = 0; k < keys->nkeys; k++) {
            n += keys->key[k].type == type;
        }

        if (n == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "privacypass: \"%V\" holds no key of token "
                               "type %d (%s), which privacypass_token_types "
                               "accepts", &keys->name, (int) type,
                               ngx_http_privacypass_type_name(type));
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}
