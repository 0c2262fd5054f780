
/*
 * Spending a token: the JSON-RPC redeem call to privacypassd in a subrequest
 * to an internal location that proxies to its /api/redeem, what the answer
 * says (read by libprivacypass), and privacypass_redeem_url, which names
 * that location or adds it.
 */

#include <openssl/sha.h>

#include "ngx_http_privacypass_module.h"


static ngx_int_t ngx_http_privacypass_redeem_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);


static ngx_str_t  ngx_http_privacypass_json = ngx_string("application/json");


/* POST {"jsonrpc":"2.0","id":1,"method":"redeem","params":{"token":...,
 * "challenge":...}} in a subrequest; ctx->redeemed once it has answered */

ngx_int_t
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


/*
 * The daemon has answered: VALID, SPENT, INVALID (it refused the token), or
 * ERROR (nothing shows the token spent or refused: fail closed), logged here
 */

ngx_http_privacypass_status_e
ngx_http_privacypass_redeemed(ngx_http_request_t *r,
    ngx_http_privacypass_loc_conf_t *plcf, ngx_http_privacypass_ctx_t *ctx)
{
    ngx_http_privacypass_status_e  outcome;

    ctx->redeemed = 0;

    outcome = ngx_http_privacypass_redeem_outcome(ctx->redeem_status,
                                                  ctx->redeem_body.data,
                                                  ctx->redeem_body.len);

    if (outcome == NGX_HTTP_PRIVACYPASS_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "privacypass: redemption through \"%V\" failed "
                      "(status %ui): answering 503", &plcf->redeem_uri,
                      ctx->redeem_status);
    }

    return outcome;
}


/*
 * privacypass_redeem_url takes the URI of an internal location that proxies
 * to privacypassd's /api/redeem, or the daemon's URL itself.  For a URL, the
 * module adds to the enclosing server, once per URL,
 *
 *     location = /_privacypass/redeem-<first 16 hex digits of SHA-256(URL)> {
 *         internal;
 *         proxy_pass URL;
 *         proxy_connect_timeout 2s; proxy_send_timeout 10s;
 *         proxy_read_timeout 10s;
 *     }
 *
 * Why as configuration text: a location belongs to ngx_http_core_module and
 * its proxying to ngx_http_proxy_module, whose configuration structures are
 * private to them; their directives are the only interface they offer.  So
 * the module writes these directives and has nginx's own parser read them in
 * the server's context, exactly as if they stood in the file.  The URL
 * cannot reach beyond its argument: it is checked first to hold no
 * whitespace, quote, backslash, ";", "{", "}", "$" or "#".
 *
 * How: ngx_conf_parse() takes its tokens from cf->conf_file->buffer, and
 * reads more from cf->conf_file->file when the buffer is used up.  Here the
 * buffer holds the whole text, and the file stands for one already read to
 * its end (its size, from a zeroed file info, is 0), so that the parser
 * never reads the real file; it only borrows the real file's name and line,
 * so that an error names the line of privacypass_redeem_url.  Given no file
 * name and an open descriptor, ngx_conf_parse() parses the inside of a block,
 * which ends at a "}": the text's last "}" ends the parse, as the server's
 * own "}" would.  cf is restored afterwards.
 */

char *
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
