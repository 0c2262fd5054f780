
/*
 * privacypass_keys: the issuer's public keys, from an RFC 9578 issuer
 * directory or a PEM file, read by libprivacypass: a verifier for the tokens,
 * and the same keys in the RFC 9578 form for the challenges' token-key.
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


char *
ngx_http_privacypass_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_privacypass_loc_conf_t *plcf = conf;

    size_t                        len, n;
    u_char                       *spki;
    ngx_str_t                    *value, name, text;
    pp_result                     res;
    ngx_uint_t                    directory;
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

    /*
     * the keys that verify and the keys offered come from the same reading
     * of the same bytes: the second call fails where the first does
     */

    directory = ngx_http_privacypass_key_file_is_directory(text.data,
                                                           text.len);
    len = 0;

    if (directory) {
        kind = "is not a usable issuer directory";
        res = pp_verifier_new_from_directory((const char *) text.data,
                                             text.len, &keys->verifier);
        if (res == PP_OK) {
            res = pp_directory_public_keys((const char *) text.data, text.len,
                                           NULL, 0, &len);
        }

    } else {
        kind = "holds no usable PUBLIC KEY block";
        res = pp_verifier_new_from_pem((const char *) text.data, text.len,
                                       &keys->verifier);
        if (res == PP_OK) {
            res = pp_pem_public_keys((const char *) text.data, text.len, NULL,
                                     0, &len);
        }
    }

    if (res == PP_ERR_BUFFER_TOO_SMALL) {
        spki = ngx_pnalloc(cf->temp_pool, len);
        if (spki == NULL) {
            return NGX_CONF_ERROR;
        }

        res = directory
              ? pp_directory_public_keys((const char *) text.data, text.len,
                                         spki, len, &len)
              : pp_pem_public_keys((const char *) text.data, text.len, spki,
                                   len, &len);
    } else {
        spki = NULL;
    }

    if (res != PP_OK || len == 0 || len % PP_PUBLIC_KEY_LEN != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "privacypass: \"%V\" %s: %s",
                           &name, kind,
                           pp_result_str(res != PP_OK ? res
                                                      : PP_ERR_INVALID_KEY));
        return NGX_CONF_ERROR;
    }

    n = len / PP_PUBLIC_KEY_LEN;

    if (n > NGX_HTTP_PRIVACYPASS_MAX_KEYS) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "privacypass: only the first %d keys are offered "
                           "in challenges", NGX_HTTP_PRIVACYPASS_MAX_KEYS);
        n = NGX_HTTP_PRIVACYPASS_MAX_KEYS;
    }

    ngx_memcpy(keys->spki, spki, n * PP_PUBLIC_KEY_LEN);
    keys->nkeys = n;

    plcf->keys = keys;

    return NGX_CONF_OK;
}
