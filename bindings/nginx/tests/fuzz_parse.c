
/*
 * The sanitizer harness of ngx_http_privacypass_parse.c: the module's parsers
 * of untrusted bytes, compiled with -fsanitize=address,undefined
 * -fno-sanitize-recover=all and driven with generated input (mk/nginx.mk:
 * make test-nginx runs 10^6 inputs, make fuzz-nginx more).
 *
 * Input number i is generated from its own seed, made of the run's seed
 * (PRIVACYPASS_FUZZ_SEED, "random" for a fresh one) and i, so that any
 * failure names the input and PRIVACYPASS_FUZZ_INPUT=i runs it alone.
 * An input is one of
 *
 *   - an Authorization value: a valid header built from known token bytes
 *     (the scheme's and the parameter's case, spacing around "=", quoting,
 *     escapes, padding, other parameters before and after, commas), or one
 *     broken in a known way (another scheme, two tokens, no token, two
 *     credentials, the standard base64 alphabet, a control byte anywhere, a
 *     truncation, a value past the 2048-byte limit); on a third of them
 *     random byte mutations besides (bit flips, NULs, quotes, commas, long
 *     runs, cut and repeated ranges, case changes, invalid UTF-8);
 *   - privacypassd's answer to a redeem call: an HTTP status and a body
 *     (success with any id, each JSON-RPC error, JSON close to a pass or a
 *     refusal, error pages, empty), mutated or not;
 *   - a key file: an RFC 9578 issuer directory or PEM, holding the key of
 *     RFC 9578's test vectors and two others, each in both SPKI
 *     forms, keys that cannot be keys and (in directories) keys of type 1,
 *     encoded in every accepted way, mutated or not.
 *
 * Checked, besides the sanitizers: every answer is the same twice; a header
 * built from known bytes yields exactly those bytes and the verdict of a
 * reference decision written here; a header broken in a known way is refused
 * as it should be; whatever parses as a token re-parses from its canonical
 * header (as written here and as libprivacypass writes it, which must agree)
 * to the same token and challenge, and is bound to the challenge a plain
 * comparison finds; a redeem answer passes or refuses only with what that
 * needs in its status and body (and decides what the answer means, for
 * unmutated ones); a key file is taken for what its first byte says, and
 * the keys offered from it are the keys its verifier takes (the same answer
 * from both), its known keys in order, each once, for unmutated ones, and
 * whole RFC 9578 keys, each once and usable, for any; libprivacypass's SPKI
 * conversion agrees with OpenSSL's encoding of the key.
 */

#include "ngx_http_privacypass_parse.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sanitizer/common_interface_defs.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>


#define DEFAULT_SEED       1
#define DEFAULT_INPUTS     1000000

#define TOKEN_MAX          600
#define PSS_PREFIX_LEN     72
#define RSA_PREFIX_LEN     24
#define RSA_SPKI_LEN       294
#define MODULUS_PART_LEN   (PP_PUBLIC_KEY_LEN - PSS_PREFIX_LEN)
#define FILE_KEYS_MAX      10
#define BLOB_MAX           400

#define nelts(a)           (sizeof(a) / sizeof((a)[0]))


/* expectations of an Authorization value */
enum {
    EXPECT_NOTHING = 0,     /* mutated: only the invariants */
    EXPECT_VERDICT,         /* the reference verdict of the token's bytes */
    EXPECT_MALFORMED,
    EXPECT_REFUSED,         /* anything but a token */
    EXPECT_TOO_LONG
};


typedef struct {
    uint64_t   s;
} rng_t;


typedef struct {
    u_char    *p;
    size_t     len;
    size_t     cap;
} buf_t;


/* GUARDED_MAX bytes followed by a page that cannot be read */
typedef struct {
    u_char    *end;
} guarded_t;

#define GUARDED_MAX        (64 * 1024)


/* what the failure report names */
static struct {
    uint64_t        seed;
    uint64_t        index;
    const char     *kind;
    const u_char   *input;
    size_t          len;
    const char     *program;
} current;


static struct {
    uint64_t   auth, redeem, keys;
    uint64_t   verdict[NGX_HTTP_PRIVACYPASS_TOKEN_LAST + 1];
    uint64_t   expected[EXPECT_TOO_LONG + 1];
    uint64_t   outcome[NGX_HTTP_PRIVACYPASS_ERROR + 1];
    uint64_t   meant;
    uint64_t   files_exact, files_ok, keys_read;
} stats;


/* the issuer key of RFC 9578's type 2 test vectors (pkS: RSASSA-PSS
 * SubjectPublicKeyInfo), and as rsaEncryption (written by OpenSSL) */
static const char  rfc9578_pks[] =
    "30820152303d06092a864886f70d01010a3030a00d300b060960864801650304"
    "0202a11a301806092a864886f70d010108300b0609608648016503040202a203"
    "0201300382010f003082010a0282010100cb1aed6b6a95f5b1ce013a4cfcab25"
    "b94b2e64a23034e4250a7eab43c0df3a8c12993af12b111908d4b471bec31d4b"
    "6c9ad9cdda90612a2ee903523e6de5a224d6b02f09e5c374d0cfe01d8f529c50"
    "0a78a2f67908fa682b5a2b430c81eaf1af72d7b5e794fc98a3139276879757ce"
    "453b526ef9bf6ceb99979b8423b90f4461a22af37aab0cf5733f7597abe44d31"
    "c732db68a181c6cbbe607d8c0e52e0655fd9996dc584eca0be87afbcd78a337d"
    "17b1dba9e828bbd81e291317144e7ff89f55619709b096cbb9ea474cead264c2"
    "073fe49740c01f00e109106066983d21e5f83f086e2e823c879cd43cef700d2a"
    "352a9babd612d03cad02db134b7e225a5f0203010001";


/* two more RSA-2048 keys (openssl genpkey), as rsaEncryption
 * SubjectPublicKeyInfo */
static const char  other_keys[2][2 * RSA_SPKI_LEN + 1] = {
    "30820122300d06092a864886f70d01010105000382010f003082010a02820101"
    "00c7ea667d41c38e18c36f236947c29263bb5dcadff41e2f26fa70a238824bfd"
    "4b460bc7a04112e316b3605d0f98cd3765a2014c242e231b699058bc689b4a50"
    "bc70064e6f38452ace731817c87554078ffc582b30dd1fa945e9076a8c0e3ed4"
    "f0cb503362f2dac13a2391e9393a97379c1bc9052c9d7b0c4b36cb1c4c53518d"
    "c85154a521cc4dc95e581c4a878f97ed8d2b3a0e11bcc33b9e3ba6b43bfb35d8"
    "080df61b0f16b3cf81a7768dedcb51a2e92d2c6a3f7fba514719ae05a3f2f233"
    "ed4615fc30b9230c2cee02cf3c1bc49cc40466547cc6777d8258e7ca5b0ba87a"
    "7ef72c822b113a4ff6b9c9f08740fc76a2ede84c2120badc032ad68825bd7f7e"
    "8f0203010001",
    "30820122300d06092a864886f70d01010105000382010f003082010a02820101"
    "00ba651ad062eb79f3135d6b751f8464885c8cf001194f8a32a306be598160f2"
    "7e497bd47eaf7628b534599af7456687a3f321bc6b68a82e79699a8724e1968e"
    "2b7d7c1d81c733a5a16ff0c8b45d5314aee6ef569b4e36e7f52233cb47d503ea"
    "e29591d95eed0ccc485c1564896bc675f7ccd063ecd620676ddbc70c845b9d95"
    "13b296dd71041d713d4c22ef8c23e5f5a90742a250dfafe1a9cc062c942c7ad8"
    "b6e15404ff4c65985d4b9a50256d7c40cd543e4876520a3654e9ff7a87c9f85d"
    "f8fcfefdb607f3160186378cfbecc8d8cdaeb57c575f1958440e79e6848b133d"
    "225c4c44b36dc37736d08478709442dcc94b56a606018dea22c438311741330a"
    "df0203010001"
};

static const char  b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char  b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char  tchars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    "!#$%&'*+-.^_`|~";


/* failure reports */

static void
dump_current(void)
{
    size_t  i, n;

    fprintf(stderr, "fuzz_parse: input %llu of seed %llu (%s), %zu bytes: \"",
            (unsigned long long) current.index,
            (unsigned long long) current.seed,
            current.kind ? current.kind : "-", current.len);

    n = current.len < 4096 ? current.len : 4096;

    for (i = 0; current.input != NULL && i < n; i++) {
        u_char  c = current.input[i];

        if (c == '"' || c == '\\') {
            fprintf(stderr, "\\%c", c);

        } else if (c >= 0x20 && c < 0x7f) {
            fputc(c, stderr);

        } else {
            fprintf(stderr, "\\x%02x", c);
        }
    }

    fprintf(stderr, "\"%s\n", n < current.len ? "..." : "");
    fprintf(stderr, "fuzz_parse: to run it alone: PRIVACYPASS_FUZZ_SEED=%llu "
            "PRIVACYPASS_FUZZ_INPUT=%llu %s\n",
            (unsigned long long) current.seed,
            (unsigned long long) current.index, current.program);
}


/*
 * After a report: AddressSanitizer calls back, UndefinedBehaviorSanitizer
 * (a runtime of its own with gcc) aborts, as its defaults below ask.
 */

static void
on_sanitizer_report(void)
{
    static int  reported;

    if (!reported) {
        reported = 1;
        fprintf(stderr, "fuzz_parse: sanitizer report\n");
        dump_current();
    }
}


static void
on_abort(int signo)
{
    on_sanitizer_report();
    signal(signo, SIG_DFL);
    raise(signo);
}


/* the sanitizers' defaults, so that a run by hand stops as make's does
 * (ASAN_OPTIONS and UBSAN_OPTIONS still apply over them) */

const char *__asan_default_options(void);
const char *__ubsan_default_options(void);

const char *
__asan_default_options(void)
{
    return "detect_leaks=1:halt_on_error=1";
}


const char *
__ubsan_default_options(void)
{
    return "print_stacktrace=1:halt_on_error=1:abort_on_error=1";
}


static void
fail(const char *fmt, ...)
{
    va_list  args;

    fprintf(stderr, "fuzz_parse: check failed: ");
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);

    dump_current();
    exit(1);
}


/* splitmix64: one stream per input */

static uint64_t
rng_next(rng_t *r)
{
    uint64_t  z;

    z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static size_t
rng_below(rng_t *r, size_t n)
{
    return n ? (size_t) (rng_next(r) % n) : 0;
}


static int
rng_chance(rng_t *r, unsigned percent)
{
    return rng_below(r, 100) < percent;
}


static void
rng_bytes(rng_t *r, u_char *p, size_t n)
{
    size_t    k;
    uint64_t  v;

    while (n) {
        v = rng_next(r);
        k = n < 8 ? n : 8;
        memcpy(p, &v, k);
        p += k;
        n -= k;
    }
}


/* growing buffers */

static void
buf_reserve(buf_t *b, size_t n)
{
    if (b->len + n <= b->cap) {
        return;
    }

    b->cap = (b->len + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);

    if (b->p == NULL) {
        fail("out of memory");
    }
}


static void
buf_add(buf_t *b, const void *p, size_t n)
{
    buf_reserve(b, n);

    if (n) {
        memcpy(b->p + b->len, p, n);
    }

    b->len += n;
}


static void
buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}


static void
buf_byte(buf_t *b, u_char c)
{
    if (b->len == b->cap) {
        buf_reserve(b, 1);
    }

    b->p[b->len++] = c;
}


static void
buf_insert(buf_t *b, size_t at, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }

    buf_reserve(b, n);
    memmove(b->p + at + n, b->p + at, b->len - at);
    memcpy(b->p + at, p, n);
    b->len += n;
}


static void
buf_erase(buf_t *b, size_t at, size_t n)
{
    if (n == 0) {
        return;
    }

    memmove(b->p + at, b->p + at + n, b->len - at - n);
    b->len -= n;
}


/* exactly n bytes on the heap, so that a read past them is reported */

static u_char *
exact_copy(const u_char *p, size_t n)
{
    u_char  *q;

    q = malloc(n);

    if (q == NULL && n) {
        fail("out of memory");
    }

    if (n) {
        memcpy(q, p, n);
    }

    return q;
}


/*
 * n bytes that end where an unreadable page begins: reading past them faults
 * even in the code the sanitizers do not instrument (libprivacypass's Rust,
 * OpenSSL's CRYPTO_memcmp), which AddressSanitizer's redzones cannot catch
 */

static u_char *
guarded(guarded_t *g, const u_char *p, size_t n)
{
    long     page;
    u_char  *base;

    if (g->end == NULL) {
        page = sysconf(_SC_PAGESIZE);
        base = mmap(NULL, GUARDED_MAX + page, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (base == MAP_FAILED
            || mprotect(base + GUARDED_MAX, page, PROT_NONE) != 0)
        {
            fail("no guarded memory");
        }

        g->end = base + GUARDED_MAX;
    }

    if (n > GUARDED_MAX) {
        fail("%zu bytes do not fit the guarded area", n);
    }

    if (n && p != NULL) {
        memcpy(g->end - n, p, n);
    }

    return g->end - n;
}


/* the reference base64 encoder */

static void
b64_encode(buf_t *b, const u_char *p, size_t n, int url, int pad)
{
    size_t       i;
    u_char      *d;
    uint32_t     v;
    const char  *a;

    a = url ? b64_url : b64_std;

    buf_reserve(b, (n + 2) / 3 * 4);
    d = b->p + b->len;

    for (i = 0; i + 3 <= n; i += 3) {
        v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
        *d++ = a[v >> 18];
        *d++ = a[(v >> 12) & 63];
        *d++ = a[(v >> 6) & 63];
        *d++ = a[v & 63];
    }

    if (n - i == 1) {
        v = (uint32_t) p[i] << 16;
        *d++ = a[v >> 18];
        *d++ = a[(v >> 12) & 63];

        if (pad) {
            *d++ = '=';
            *d++ = '=';
        }

    } else if (n - i == 2) {
        v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8;
        *d++ = a[v >> 18];
        *d++ = a[(v >> 12) & 63];
        *d++ = a[(v >> 6) & 63];

        if (pad) {
            *d++ = '=';
        }
    }

    b->len = d - b->p;
}


static void
random_case(rng_t *r, buf_t *b, const char *s, unsigned percent)
{
    for ( /* void */ ; *s; s++) {
        u_char  c = (u_char) *s;

        if (((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            && rng_chance(r, percent))
        {
            c ^= 0x20;
        }

        buf_byte(b, c);
    }
}


static void
spaces(rng_t *r, buf_t *b, size_t min, size_t max)
{
    size_t  n;

    n = min + rng_below(r, max - min + 1);

    while (n--) {
        buf_byte(b, rng_chance(r, 75) ? ' ' : '\t');
    }
}


/* random byte mutations, with words of the format */

static void
havoc(rng_t *r, buf_t *b, const char *const *words, size_t nwords)
{
    u_char   c;
    size_t   n, i, at, len, k;

    static const u_char  interesting[] = {
        '"', '\\', ',', '=', ' ', '\t', '\0', 0xff, 0xc3, 0x80, 'A', '-',
        '_', '+', '/', '\r', '\n', '{', '}', ':', 0x7f, 0x01
    };

    n = 1 + rng_below(r, 6);

    for (i = 0; i < n; i++) {

        at = rng_below(r, b->len + 1);

        switch (rng_below(r, 11)) {

        case 0:
            if (b->len) {
                b->p[rng_below(r, b->len)] ^= (u_char) (1 << rng_below(r, 8));
            }
            break;

        case 1:
            if (b->len) {
                b->p[rng_below(r, b->len)] = (u_char) rng_next(r);
            }
            break;

        case 2:
            c = interesting[rng_below(r, sizeof(interesting))];
            buf_insert(b, at, &c, 1);
            break;

        case 3:
            if (at < b->len) {
                buf_erase(b, at, 1);
            }
            break;

        case 4:
            len = rng_below(r, b->len - at + 1);
            len = rng_chance(r, 80) && len > 16 ? rng_below(r, 17) : len;
            buf_erase(b, at, len);
            break;

        case 5:
            if (b->len && b->len < 32768) {
                k = rng_below(r, b->len);
                len = 1 + rng_below(r, b->len - k);
                len = len > 600 ? 600 : len;

                {
                    u_char  copy[600];

                    memcpy(copy, b->p + k, len);
                    buf_insert(b, at, copy, len);
                }
            }
            break;

        case 6:
            for (k = 0; k < b->len; k++) {
                c = b->p[(at + k) % b->len];

                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
                    b->p[(at + k) % b->len] ^= 0x20;
                    break;
                }
            }
            break;

        case 7:
            b->len = at;
            break;

        case 8:
            k = rng_below(r, nwords);
            buf_insert(b, at, words[k], strlen(words[k]));
            break;

        case 9:
            if (b->len < 32768) {
                u_char  run[3000];

                c = interesting[rng_below(r, sizeof(interesting))];
                len = 1 + rng_below(r, rng_chance(r, 50) ? 16 : sizeof(run));
                memset(run, c, len);
                buf_insert(b, at, run, len);
            }
            break;

        default:
            len = rng_below(r, b->len - at + 1);
            len = len > 32 ? 32 : len;

            if (len) {
                rng_bytes(r, b->p + at, len);
            }
            break;
        }
    }
}


/* Authorization values */

/* a token type's token length: RFC 9578's Nk 48 (type 1), 256 (type 2), 64
 * (type 5) after 2 + 32 + 32 + 32 bytes */

static size_t
type_token_len(unsigned type)
{
    switch (type) {
    case 1:
        return 146;
    case 2:
        return PP_TOKEN_LEN;
    case 5:
        return 162;
    default:
        return 0;
    }
}


#define KEY_IDS_MAX        3

/* what a location accepts of one type */
typedef struct {
    uint16_t    type;
    u_char      digest[2][NGX_HTTP_PRIVACYPASS_DIGEST_LEN];
    ngx_uint_t  n;
    u_char      key_id[KEY_IDS_MAX][PP_TOKEN_KEY_ID_LEN];
    ngx_uint_t  nkeys;
} accept_case_t;


typedef struct {
    accept_case_t  acc[NGX_HTTP_PRIVACYPASS_NTYPES];
    ngx_uint_t     naccept;
    u_char         token[TOKEN_MAX];
    size_t         token_len;
} auth_case_t;


/* what the module reads of a value */
typedef struct {
    ngx_http_privacypass_token_e  rc;
    u_char                        token[PP_TOKEN_LEN];
    size_t                        token_len;
    uint16_t                      type;
    ngx_uint_t                    which;
    ngx_uint_t                    match;
} auth_read_t;


/* the verdict the module should reach for a token's bytes */

static ngx_http_privacypass_token_e
reference_verdict(const auth_case_t *a, const u_char *token, size_t len,
    ngx_uint_t *which, ngx_uint_t *match)
{
    unsigned              type;
    ngx_uint_t            i;
    const accept_case_t  *acc;

    if (len > PP_TOKEN_LEN) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_LENGTH;
    }

    type = len >= 2 ? (unsigned) token[0] << 8 | token[1] : 0;

    if (type_token_len(type) == 0 || len != type_token_len(type)) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_TYPE;
    }

    acc = NULL;

    for (i = 0; i < a->naccept; i++) {
        if (a->acc[i].type == type) {
            acc = &a->acc[i];
            *which = i;
            break;
        }
    }

    if (acc == NULL) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_NOT_ACCEPTED;
    }

    for (i = 0; i < acc->n; i++) {
        if (memcmp(token + 34, acc->digest[i], 32) == 0) {
            break;
        }
    }

    if (i == acc->n) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_UNBOUND;
    }

    *match = i;

    if (type == 2) {
        return NGX_HTTP_PRIVACYPASS_TOKEN_BOUND;
    }

    for (i = 0; i < acc->nkeys; i++) {
        if (memcmp(token + 66, acc->key_id[i], 32) == 0) {
            return NGX_HTTP_PRIVACYPASS_TOKEN_BOUND;
        }
    }

    return NGX_HTTP_PRIVACYPASS_TOKEN_UNKNOWN_KEY;
}


/*
 * The value, the accept list with its digests and key ids, and the token's
 * room either each in exactly sized heap blocks (AddressSanitizer's redzones
 * on both sides, for the module's code), or each against an unreadable page
 * (for the code it calls)
 */

static void
parse_token(const auth_case_t *a, const u_char *in, size_t len,
    auth_read_t *out, int guard)
{
    size_t                          dlen, klen;
    u_char                         *value, *token;
    ngx_uint_t                      i;
    ngx_http_privacypass_accept_t  *accept;
    ngx_http_privacypass_accept_t   local[NGX_HTTP_PRIVACYPASS_NTYPES];

    static guarded_t  gvalue, gtoken, gaccept;
    static guarded_t  gdigest[NGX_HTTP_PRIVACYPASS_NTYPES];
    static guarded_t  gkey[NGX_HTTP_PRIVACYPASS_NTYPES];

    for (i = 0; i < a->naccept; i++) {
        dlen = a->acc[i].n * NGX_HTTP_PRIVACYPASS_DIGEST_LEN;
        klen = a->acc[i].nkeys * PP_TOKEN_KEY_ID_LEN;

        local[i].type = a->acc[i].type;
        local[i].n = a->acc[i].n;
        local[i].nkeys = a->acc[i].nkeys;

        if (guard) {
            local[i].digest = (void *) guarded(&gdigest[i],
                                               (u_char *) a->acc[i].digest,
                                               dlen);
            local[i].key_id = (void *) guarded(&gkey[i],
                                               (u_char *) a->acc[i].key_id,
                                               klen);
        } else {
            local[i].digest = (void *) exact_copy(
                                           (u_char *) a->acc[i].digest, dlen);
            local[i].key_id = (void *) exact_copy(
                                           (u_char *) a->acc[i].key_id, klen);
        }
    }

    dlen = a->naccept * sizeof(ngx_http_privacypass_accept_t);

    if (guard) {
        value = guarded(&gvalue, in, len);
        accept = (void *) guarded(&gaccept, (u_char *) local, dlen);
        token = guarded(&gtoken, NULL, PP_TOKEN_LEN);

    } else {
        value = exact_copy(in, len);
        accept = (void *) exact_copy((u_char *) local, dlen);
        token = malloc(PP_TOKEN_LEN);
    }

    out->token_len = (size_t) -1;
    out->type = 0xdead;
    out->which = (ngx_uint_t) -1;
    out->match = (ngx_uint_t) -1;

    out->rc = ngx_http_privacypass_parse_token(value, len, accept,
                                               a->naccept, token,
                                               &out->token_len, &out->type,
                                               &out->which, &out->match);

    if (ngx_http_privacypass_token_read(out->rc)) {
        if (out->token_len > PP_TOKEN_LEN) {
            fail("a token of %zu bytes", out->token_len);
        }

        memcpy(out->token, token, out->token_len);
    }

    if (!guard) {
        free(token);
        free(accept);
        free(value);

        for (i = 0; i < a->naccept; i++) {
            free(local[i].digest);
            free(local[i].key_id);
        }
    }
}


static void
make_token(rng_t *r, auth_case_t *a)
{
    size_t          k, n;
    unsigned        type, order[3];
    ngx_uint_t      i, j;
    accept_case_t  *acc, *own;

    static const unsigned  types[] = { 2, 1, 5 };
    static const unsigned  odd_types[] = { 0, 3, 4, 6, 0x100, 0x200, 0xffff };
    static const size_t    odd_lengths[] = {
        0, 1, 2, 3, 4, 98, 145, 147, 161, 163, 352, 353, 355, 356, 357, 400
    };

    /* the location's types: 1 to 3 of them, in any order; of each the
     * current and the previous window's digests, the second one byte off
     * the first, so that comparing fewer bytes than all shows; for types 1
     * and 5 up to KEY_IDS_MAX key ids, the last one byte off the first */

    memcpy(order, types, sizeof(order));

    for (i = nelts(order) - 1; i > 0; i--) {
        j = rng_below(r, i + 1);
        type = order[i];
        order[i] = order[j];
        order[j] = type;
    }

    a->naccept = 1 + rng_below(r, NGX_HTTP_PRIVACYPASS_NTYPES);

    for (i = 0; i < a->naccept; i++) {
        acc = &a->acc[i];
        acc->type = (uint16_t) order[i];

        if (i > 0 && rng_chance(r, 20)) {

            /* the same digests as another type: only the type tells */

            memcpy(acc->digest, a->acc[0].digest, sizeof(acc->digest));

        } else {
            rng_bytes(r, acc->digest[0], sizeof(acc->digest[0]));
            memcpy(acc->digest[1], acc->digest[0], sizeof(acc->digest[1]));
            acc->digest[1][rng_below(r, 32)] ^= (u_char) (1 + rng_below(r, 255));
        }

        acc->n = rng_chance(r, 70) ? 2 : 1;

        acc->nkeys = acc->type == 2 ? 0
                     : rng_chance(r, 3) ? 0 : 1 + rng_below(r, KEY_IDS_MAX);

        for (j = 0; j < acc->nkeys; j++) {
            rng_bytes(r, acc->key_id[j], PP_TOKEN_KEY_ID_LEN);
        }

        if (acc->nkeys > 1) {
            memcpy(acc->key_id[acc->nkeys - 1], acc->key_id[0],
                   PP_TOKEN_KEY_ID_LEN);
            acc->key_id[acc->nkeys - 1][rng_below(r, 32)] ^=
                                            (u_char) (1 + rng_below(r, 255));
        }
    }

    /* the token's type: mostly one the location accepts */

    if (rng_chance(r, 75)) {
        type = a->acc[rng_below(r, a->naccept)].type;

    } else if (rng_chance(r, 80)) {
        type = types[rng_below(r, nelts(types))];

    } else {
        type = odd_types[rng_below(r, nelts(odd_types))];
    }

    if (rng_chance(r, 88) && type_token_len(type)) {
        a->token_len = type_token_len(type);

    } else if (rng_chance(r, 60)) {
        a->token_len = odd_lengths[rng_below(r, nelts(odd_lengths))];

    } else {
        a->token_len = rng_below(r, TOKEN_MAX + 1);
    }

    rng_bytes(r, a->token, a->token_len);

    if (a->token_len >= 2 && rng_chance(r, 92)) {
        a->token[0] = (u_char) (type >> 8);
        a->token[1] = (u_char) type;
    }

    own = NULL;

    for (i = 0; i < a->naccept; i++) {
        if (a->acc[i].type == type) {
            own = &a->acc[i];
        }
    }

    /* the challenge digest: of its type's challenges, or another type's */

    if (a->token_len >= 66) {
        k = rng_below(r, 10);
        acc = own != NULL && k < 7 ? own : &a->acc[rng_below(r, a->naccept)];

        if (k < 4 || k == 7) {
            memcpy(a->token + 34, acc->digest[0], 32);

        } else if (k < 7 || k == 8) {
            memcpy(a->token + 34, acc->digest[1], 32);
        }
    }

    /* the key id: one of its type's keys, or another type's */

    if (a->token_len >= 98) {
        k = rng_below(r, 10);
        acc = own != NULL && k < 7 ? own : &a->acc[rng_below(r, a->naccept)];

        if (k < 8 && acc->nkeys > 0) {
            n = rng_below(r, acc->nkeys);
            memcpy(a->token + 66, acc->key_id[n], 32);
        }
    }
}


/* one Authorization value: what it should come to in *expect */

static void
make_authorization(rng_t *r, auth_case_t *a, buf_t *h, int *expect)
{
    int          quoted, scheme_ok, tokens, changed;
    size_t       i, k, nparams, slot, value_end, target, fill;
    unsigned     op;

    static buf_t  v;

    static const char *const  leads[] = {
        "", "", "", "", " ", ",", ", ", " , ,"
    };
    static const char *const  trails[] = {
        "", "", "", "", ",", ", ", " , ,", " ", "\t"
    };
    static const char *const  schemes[] = {
        "Bearer", "Basic", "PrivateTokens", "PrivateToke", "Private-Token",
        "Private Token", "Digest", "PrivateToken2"
    };
    static const char *const  names[] = {
        "realm", "foo", "max-age", "challenge", "token-key", "tokens", "toke",
        "x-token", "a", "tokenx"
    };
    static const char *const  others[] = {
        "PrivateToken token=AAAA", "Basic realm=\"x\"", "Bearer abc==",
        "PrivateToken", "Basic", "PrivateToken challenge=\"AAAA\""
    };

    make_token(r, a);

    /* what is broken, if anything */

    op = rng_chance(r, 35) ? 1 + (unsigned) rng_below(r, 8) : 0;

    /* the token's base64url, padded or not; or the standard alphabet */

    v.len = 0;
    b64_encode(&v, a->token, a->token_len, 1, rng_chance(r, 50));

    *expect = EXPECT_VERDICT;

    if (op == 1) {
        changed = 0;

        for (i = 0; i < v.len; i++) {
            if (v.p[i] == '-' || v.p[i] == '_') {
                v.p[i] = v.p[i] == '-' ? '+' : '/';
                changed = 1;
            }
        }

        if (changed) {
            *expect = EXPECT_MALFORMED;
        }
    }

    quoted = a->token_len == 0 || rng_chance(r, 60);
    scheme_ok = op != 2;
    tokens = op == 3 ? 2 : op == 4 ? 0 : 1;

    if (op == 2 || op == 3 || op == 4) {
        *expect = EXPECT_MALFORMED;
    }

    h->len = 0;

    buf_str(h, leads[rng_below(r, nelts(leads))]);

    if (scheme_ok) {
        random_case(r, h, "PrivateToken", rng_chance(r, 50) ? 0 : 30);

    } else {
        buf_str(h, schemes[rng_below(r, nelts(schemes))]);
    }

    spaces(r, h, 1, 3);

    nparams = rng_chance(r, 60) ? 0 : 1 + rng_below(r, 3);
    slot = rng_below(r, nparams + 1);
    value_end = 0;

    for (i = 0; i < nparams + (size_t) tokens; i++) {

        if (i > 0) {
            spaces(r, h, 0, 2);
            buf_byte(h, ',');

            if (rng_chance(r, 10)) {
                buf_byte(h, ',');
            }

            spaces(r, h, 0, 2);
        }

        if (tokens > 0 && (i == slot || (tokens == 2 && i == slot + 1))) {

            random_case(r, h, "token", rng_chance(r, 60) ? 0 : 40);

            if (rng_chance(r, 20)) {
                spaces(r, h, 0, 2);
                buf_byte(h, '=');
                spaces(r, h, 0, 2);

            } else {
                buf_byte(h, '=');
            }

            if (quoted) {
                buf_byte(h, '"');

                if (rng_chance(r, 80)) {
                    buf_add(h, v.p, v.len);

                } else {

                    /* quoted-pairs: \A stands for A */

                    for (k = 0; k < v.len; k++) {
                        if (rng_chance(r, 5)) {
                            buf_byte(h, '\\');
                        }

                        buf_byte(h, v.p[k]);
                    }
                }

                buf_byte(h, '"');

            } else {
                buf_add(h, v.p, v.len);
            }

            value_end = h->len;
            continue;
        }

        /* another parameter: a token, or a quoted string with commas,
         * spaces, equal signs and escapes */

        buf_str(h, names[rng_below(r, nelts(names))]);
        buf_byte(h, '=');

        if (rng_chance(r, 40)) {
            k = 1 + rng_below(r, 12);

            while (k--) {
                buf_byte(h, tchars[rng_below(r, sizeof(tchars) - 1)]);
            }

        } else {
            buf_byte(h, '"');
            k = rng_below(r, 40);

            while (k--) {
                u_char  c = (u_char) (0x20 + rng_below(r, 0x5f));

                if (c == '"' || c == '\\') {
                    buf_byte(h, '\\');
                }

                buf_byte(h, c);
            }

            buf_byte(h, '"');
        }
    }

    buf_str(h, trails[rng_below(r, nelts(trails))]);

    switch (op) {

    case 5:
        /* a second credential */
        buf_str(h, ", ");
        buf_str(h, others[rng_below(r, nelts(others))]);
        *expect = EXPECT_MALFORMED;
        break;

    case 6:
        /* a control byte (not whitespace) anywhere, where no other
         * parameter's quoted string could hold it */
        if (nparams == 0) {
            static const u_char  controls[] = {
                0x00, 0x01, 0x02, 0x07, 0x08, 0x0e, 0x1b, 0x1f, 0x7f
            };

            u_char  c = controls[rng_below(r, sizeof(controls))];

            buf_insert(h, rng_below(r, h->len + 1), &c, 1);
            *expect = EXPECT_MALFORMED;
        }
        break;

    case 7:
        /* cut before the end of the value of a token of its type's length:
         * shorter, never a token */
        if (a->token_len >= 2
            && a->token_len == type_token_len((unsigned) a->token[0] << 8
                                              | a->token[1]))
        {
            /* before its last base64 character, not in the padding */
            k = value_end;

            while (k > 0
                   && (h->p[k - 1] == '"' || h->p[k - 1] == '='
                       || h->p[k - 1] == '\\'))
            {
                k--;
            }

            h->len = rng_below(r, k);
            *expect = EXPECT_REFUSED;
        }
        break;

    case 8:
        /* another parameter up to a length around the limit */
        k = rng_below(r, 4);
        target = k == 0 ? NGX_HTTP_PRIVACYPASS_MAX_AUTHORIZATION
                 : k == 1 ? NGX_HTTP_PRIVACYPASS_MAX_AUTHORIZATION + 1
                 : k == 2 ? h->len + 6 + rng_below(r, 1500)
                 : NGX_HTTP_PRIVACYPASS_MAX_AUTHORIZATION + 1
                   + rng_below(r, 6000);

        if (h->len + 6 <= target) {
            fill = target - h->len - 6;
            buf_str(h, ", x=\"");

            while (fill--) {
                buf_byte(h, "a ,="[rng_below(r, 4)]);
            }

            buf_byte(h, '"');

            if (h->len > NGX_HTTP_PRIVACYPASS_MAX_AUTHORIZATION) {
                *expect = EXPECT_TOO_LONG;
            }
        }
        break;
    }
}


static void
check_authorization(rng_t *r)
{
    int                            expect;
    size_t                         out_len;
    ngx_uint_t                     ref_which, ref_match;
    auth_case_t                    a;
    auth_read_t                    got, again;
    ngx_http_privacypass_token_e   rc, ref;
    char                           encoded[1024];

    static buf_t  h, canon;

    static const char *const  words[] = {
        "PrivateToken", "PrivateToken token=", "token=", "token", "\"", ",",
        "=", "==", "\\", " ", "\t", "\\\"", "\xc3\xa9", "\xe2\x80\xa8"
    };

    make_authorization(r, &a, &h, &expect);

    if (rng_chance(r, 33)) {
        havoc(r, &h, words, nelts(words));
        expect = EXPECT_NOTHING;
    }

    current.kind = "Authorization value";
    current.input = h.p;
    current.len = h.len;

    parse_token(&a, h.p, h.len, &got, 1);
    rc = got.rc;

    if (rc > NGX_HTTP_PRIVACYPASS_TOKEN_LAST) {
        fail("verdict %d is none of the module's", (int) rc);
    }

    stats.auth++;
    stats.verdict[rc]++;
    stats.expected[expect]++;

    /* the same answer twice (from heap blocks this time) */

    parse_token(&a, h.p, h.len, &again, 0);

    if (again.rc != rc) {
        fail("verdict %d, then %d", (int) rc, (int) again.rc);
    }

    if ((h.len > NGX_HTTP_PRIVACYPASS_MAX_AUTHORIZATION)
        != (rc == NGX_HTTP_PRIVACYPASS_TOKEN_TOO_LONG))
    {
        fail("%zu bytes, verdict %d", h.len, (int) rc);
    }

    switch (expect) {

    case EXPECT_VERDICT:
        ref_which = (ngx_uint_t) -1;
        ref_match = (ngx_uint_t) -1;
        ref = reference_verdict(&a, a.token, a.token_len, &ref_which,
                                &ref_match);

        if (rc != ref) {
            fail("a header built from a %zu-byte token: verdict %d, not %d",
                 a.token_len, (int) rc, (int) ref);
        }

        if (ngx_http_privacypass_token_read(rc)
            && (got.token_len != a.token_len
                || memcmp(got.token, a.token, a.token_len) != 0))
        {
            fail("a header built from known bytes yields other bytes");
        }

        if (rc == NGX_HTTP_PRIVACYPASS_TOKEN_BOUND
            && (got.which != ref_which || got.match != ref_match))
        {
            fail("bound to challenge %lu of type %lu, not %lu of %lu",
                 (unsigned long) got.match, (unsigned long) got.which,
                 (unsigned long) ref_match, (unsigned long) ref_which);
        }
        break;

    case EXPECT_MALFORMED:
        if (rc != NGX_HTTP_PRIVACYPASS_TOKEN_MALFORMED) {
            fail("a broken header: verdict %d, not malformed", (int) rc);
        }
        break;

    case EXPECT_REFUSED:
        if (ngx_http_privacypass_token_read(rc)) {
            fail("a truncated header yields a token");
        }
        break;

    case EXPECT_TOO_LONG:
        if (rc != NGX_HTTP_PRIVACYPASS_TOKEN_TOO_LONG) {
            fail("a header over the limit: verdict %d", (int) rc);
        }
        break;
    }

    if (!ngx_http_privacypass_token_read(rc)) {
        goto done;
    }

    /* a token, whatever the input: the same twice, of the type its first
     * bytes say, judged as the reference judges its bytes, and the same
     * from its canonical header (every time the bytes were not known, one
     * time in eight otherwise) */

    if (again.token_len != got.token_len
        || memcmp(got.token, again.token, got.token_len) != 0
        || again.type != got.type
        || (rc == NGX_HTTP_PRIVACYPASS_TOKEN_BOUND
            && (got.which != again.which || got.match != again.match)))
    {
        fail("the same header read twice gives two tokens");
    }

    if (got.token_len < 2
        || got.type != ((unsigned) got.token[0] << 8 | got.token[1]))
    {
        fail("a token of type %u read as type %u",
             got.token_len < 2 ? 0 : (unsigned) got.token[0] << 8
                                     | got.token[1],
             (unsigned) got.type);
    }

    ref_which = (ngx_uint_t) -1;
    ref_match = (ngx_uint_t) -1;
    ref = reference_verdict(&a, got.token, got.token_len, &ref_which,
                            &ref_match);

    if (ref != rc
        || (rc == NGX_HTTP_PRIVACYPASS_TOKEN_BOUND
            && (got.which != ref_which || got.match != ref_match)))
    {
        fail("the token read is %d (challenge %lu of type %lu), the "
             "reference says %d (challenge %lu of type %lu)", (int) rc,
             (unsigned long) got.match, (unsigned long) got.which, (int) ref,
             (unsigned long) ref_match, (unsigned long) ref_which);
    }

    canon.len = 0;
    if (expect == EXPECT_VERDICT && !rng_chance(r, 12)) {
        goto done;
    }

    buf_str(&canon, "PrivateToken token=\"");
    b64_encode(&canon, got.token, got.token_len, 1, 1);
    buf_byte(&canon, '"');

    if (pp_authorization_encode(got.token, got.token_len, encoded,
                                sizeof(encoded), &out_len)
        != PP_OK
        || out_len != canon.len || memcmp(encoded, canon.p, out_len) != 0)
    {
        fail("libprivacypass writes the token's header otherwise");
    }

    parse_token(&a, canon.p, canon.len, &again, 1);

    if (again.rc != rc || again.token_len != got.token_len
        || memcmp(got.token, again.token, got.token_len) != 0
        || (rc == NGX_HTTP_PRIVACYPASS_TOKEN_BOUND
            && (got.which != again.which || got.match != again.match)))
    {
        fail("the token's canonical header reads otherwise");
    }

done:

    return;
}


/* privacypassd's answers */

static int
has(const u_char *body, size_t len, const char *needle)
{
    size_t  n;

    n = strlen(needle);

    return len >= n && memmem(body, len, needle, n) != NULL;
}


/*
 * What every outcome needs, whatever the body: a pass a 200 holding
 * "success", a refusal the code of that refusal with its status or 200.
 * Anything else is ERROR, which needs nothing.
 */

static const char *
reference_violation(ngx_http_privacypass_status_e rc, ngx_uint_t status,
    const u_char *body, size_t len)
{
    switch (rc) {

    case NGX_HTTP_PRIVACYPASS_VALID:
        if (status != 200 || !has(body, len, "\"success\"")
            || !has(body, len, "\"result\"") || !has(body, len, "\"2.0\""))
        {
            return "a pass without a 200 holding \"result\": \"success\"";
        }
        break;

    case NGX_HTTP_PRIVACYPASS_SPENT:
        if ((status != 200 && status != 403) || !has(body, len, "-32021")
            || !has(body, len, "\"error\""))
        {
            return "spent without -32021 in an error, with 403 or 200";
        }
        break;

    case NGX_HTTP_PRIVACYPASS_INVALID:
        if (!has(body, len, "\"error\"")
            || !(((status == 200 || status == 403)
                  && has(body, len, "-32020"))
                 || ((status == 200 || status == 400)
                     && (has(body, len, "-32022")
                         || has(body, len, "-32602")))))
        {
            return "invalid without a refusing code and its status";
        }
        break;

    default:
        break;
    }

    return NULL;
}


/* what a JSON-RPC error with this code and status means */

static int
meaning_of_error(long code, ngx_uint_t status)
{
    switch (code) {

    case -32021:
        return status == 200 || status == 403 ? NGX_HTTP_PRIVACYPASS_SPENT
                                              : NGX_HTTP_PRIVACYPASS_ERROR;

    case -32020:
        return status == 200 || status == 403 ? NGX_HTTP_PRIVACYPASS_INVALID
                                              : NGX_HTTP_PRIVACYPASS_ERROR;

    case -32022:
    case -32602:
        return status == 200 || status == 400 ? NGX_HTTP_PRIVACYPASS_INVALID
                                              : NGX_HTTP_PRIVACYPASS_ERROR;

    default:
        /* the store unavailable, the daemon's other codes, codes outside
         * the table (one holding "-32021" among them) */
        return NGX_HTTP_PRIVACYPASS_ERROR;
    }
}


static void
check_redeem_answer(rng_t *r)
{
    int                             meant;
    char                            line[256];
    u_char                         *body;
    long                            code;
    ngx_uint_t                      status;
    const char                     *violation;
    ngx_http_privacypass_status_e   rc, rc2;

    static buf_t  b;

    static const ngx_uint_t  statuses[] = {
        200, 200, 200, 200, 200, 400, 403, 0, 401, 404, 500, 502, 503, 504
    };
    static const long  codes[] = {
        -32021, -32020, -32022, -32602, -32050, -32600, -32601, -32603,
        -32000, -32010, -3202, -320210
    };
    static const char *const  messages[] = {
        "token already spent", "verification failed", "invalid params",
        "store unavailable", "internal error", "", "success", "-32021"
    };
    static const char *const  ids[] = { "1", "\"a\"", "null", "-7.5" };
    static const char *const  near_misses[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"success\","
            "\"error\":{\"code\":-32021}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"failure\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"success\":true}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"SUCCESS\"}",
        "{\"id\":1,\"result\":\"success\"}",
        "{\"jsonrpc\":\"2.0\",\"result\":\"success\"}",
        "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"success\"}]",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"success\"} x",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"-32021\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"-32021\"}}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":-32021}",
        "\"success\""
    };
    static const char *const  words[] = {
        "\"success\"", "\"error\"", "-32021", "-32020", "-32022", "-32602",
        "success", "error", "\"", "-3202", "SUCCESS", "\"Error\"", "{", "}",
        "[", "]", ",", ":", "\"result\":", "\"code\":", "\"id\":1,"
    };

    status = rng_chance(r, 95)
             ? statuses[rng_below(r, nelts(statuses))]
             : rng_below(r, 1000);

    meant = -1;
    b.len = 0;

    switch (rng_below(r, 7)) {

    case 0:
        snprintf(line, sizeof(line),
                 rng_chance(r, 50)
                 ? "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":\"success\"}"
                 : "{ \"result\": \"success\",\n  \"jsonrpc\": \"2.0\",\n"
                   "  \"id\": %s }\n",
                 ids[rng_below(r, nelts(ids))]);
        buf_str(&b, line);
        meant = status == 200 ? NGX_HTTP_PRIVACYPASS_VALID
                              : NGX_HTTP_PRIVACYPASS_ERROR;
        break;

    case 1:
    case 2:
        code = codes[rng_below(r, nelts(codes))];
        snprintf(line, sizeof(line),
                 rng_chance(r, 50)
                 ? "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":%ld,"
                   "\"message\":\"%s\"}}"
                 : "{\"jsonrpc\": \"2.0\", \"error\": {\"message\": \"%2$s\", "
                   "\"code\": %1$ld, \"data\": [1]}, \"id\": 1}",
                 code,
                 messages[rng_below(r, nelts(messages))]);
        buf_str(&b, line);
        meant = meaning_of_error(code, status);
        break;

    case 3:
        buf_str(&b, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
                    "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
                    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n");
        meant = NGX_HTTP_PRIVACYPASS_ERROR;
        break;

    case 4:
        meant = NGX_HTTP_PRIVACYPASS_ERROR;
        break;

    default:
        /* JSON close to a pass or a refusal, and neither */
        buf_str(&b, near_misses[rng_below(r, nelts(near_misses))]);
        meant = NGX_HTTP_PRIVACYPASS_ERROR;
        break;
    }

    if (rng_chance(r, 35)) {
        havoc(r, &b, words, nelts(words));
        meant = -1;
    }

    current.kind = "redeem answer";
    current.input = b.p;
    current.len = b.len;

    /* an empty body may come as NULL; else it ends where memory does */

    body = b.len == 0 && rng_chance(r, 50) ? NULL : exact_copy(b.p, b.len);
    rc = ngx_http_privacypass_redeem_outcome(status, body, b.len);
    free(body);

    if (rc != NGX_HTTP_PRIVACYPASS_VALID && rc != NGX_HTTP_PRIVACYPASS_SPENT
        && rc != NGX_HTTP_PRIVACYPASS_INVALID
        && rc != NGX_HTTP_PRIVACYPASS_ERROR)
    {
        fail("outcome %d is none of the four", (int) rc);
    }

    {
        static guarded_t  g;

        rc2 = ngx_http_privacypass_redeem_outcome(status,
                                                  guarded(&g, b.p, b.len),
                                                  b.len);
    }

    if (rc2 != rc) {
        fail("status %lu: outcome %d, then %d", (unsigned long) status,
             (int) rc, (int) rc2);
    }

    violation = reference_violation(rc, status, b.p, b.len);

    if (violation != NULL) {
        fail("status %lu: outcome %d: %s", (unsigned long) status, (int) rc,
             violation);
    }

    if (meant >= 0) {
        stats.meant++;

        if ((int) rc != meant) {
            fail("status %lu: outcome %d, the answer means %d",
                 (unsigned long) status, (int) rc, meant);
        }
    }

    stats.redeem++;
    stats.outcome[rc]++;
}


/* key files */

/* the issuer keys of the key files: the RFC's and other_keys, each in its
 * RFC 9578 form and as rsaEncryption */

#define KEYS_KNOWN         3

static u_char  known_pss[KEYS_KNOWN][PP_PUBLIC_KEY_LEN];
static u_char  known_rsa[KEYS_KNOWN][RSA_SPKI_LEN];


/* what an entry of a key file is */
enum {
    ENTRY_KEY = 0,          /* known key number entry->key */
    ENTRY_BROKEN,           /* a type 2 key that cannot be one */
    ENTRY_OTHER_TYPE        /* a key of type 1 (directories only) */
};


typedef struct {
    int      kind;
    size_t   key;
    size_t   len;
    u_char   der[BLOB_MAX];
} entry_t;


typedef struct {
    size_t   n;
    entry_t  e[FILE_KEYS_MAX];
} entries_t;


static void
make_entry(rng_t *r, entry_t *e, int directory)
{
    size_t  k;

    k = rng_below(r, 10);

    if (k < 7) {
        e->kind = ENTRY_KEY;
        e->key = rng_below(r, KEYS_KNOWN);

        if (rng_chance(r, 50)) {
            memcpy(e->der, known_pss[e->key], PP_PUBLIC_KEY_LEN);
            e->len = PP_PUBLIC_KEY_LEN;

        } else {
            memcpy(e->der, known_rsa[e->key], RSA_SPKI_LEN);
            e->len = RSA_SPKI_LEN;
        }

        return;
    }

    if (k < 9 || !directory) {

        /* a byte short or a byte over (DER that cannot parse), or too short
         * to hold RSA-2048 */

        e->kind = ENTRY_BROKEN;
        e->key = rng_below(r, KEYS_KNOWN);

        switch (rng_below(r, 3)) {

        case 0:
            memcpy(e->der, known_pss[e->key], PP_PUBLIC_KEY_LEN);
            e->len = PP_PUBLIC_KEY_LEN - 1;
            break;

        case 1:
            memcpy(e->der, known_rsa[e->key], RSA_SPKI_LEN);
            e->der[RSA_SPKI_LEN] = (u_char) rng_next(r);
            e->len = RSA_SPKI_LEN + 1;
            break;

        default:
            e->len = rng_below(r, 100);
            rng_bytes(r, e->der, e->len);
            break;
        }

        return;
    }

    e->kind = ENTRY_OTHER_TYPE;
    e->len = rng_below(r, BLOB_MAX + 1);
    rng_bytes(r, e->der, e->len);
}


static void
make_key_file(rng_t *r, entries_t *entries, int *directory, buf_t *t)
{
    int          url, pad;
    size_t       i, k, width, start;
    entry_t     *e;
    const char  *eol;

    static buf_t  enc;

    static const char *const  colons[] = {
        ":", ": ", " : ", ":\t", ":\r\n    "
    };

    *directory = rng_chance(r, 60);

    /* mostly a few keys, as issuers publish; up to past the 8 offered */

    entries->n = rng_chance(r, 80) ? rng_below(r, 4)
                                   : rng_below(r, FILE_KEYS_MAX + 1);

    for (i = 0; i < entries->n; i++) {
        make_entry(r, &entries->e[i], *directory);
    }

    t->len = 0;

    if (*directory) {

        /* an RFC 9578 issuer directory, members in any order, others
         * beside them */

        if (rng_chance(r, 20)) {
            buf_str(t, rng_chance(r, 50) ? "\n" : "\r\n");
        }

        spaces(r, t, 0, 2);
        buf_str(t, "{");
        spaces(r, t, 0, 1);

        if (rng_chance(r, 90)) {
            buf_str(t, "\"issuer-request-uri\":");
            spaces(r, t, 0, 1);
            buf_str(t, "\"/token-request\",");
        }

        if (rng_chance(r, 20)) {
            buf_str(t, "\"note\":\"token-key\",\"x-token-key\":[\"AAAA\"],");
        }

        buf_str(t, rng_chance(r, 50) ? "\n  \"token-keys\": ["
                                     : "\"token-keys\":[");

        for (i = 0; i < entries->n; i++) {
            e = &entries->e[i];
            url = rng_chance(r, 60);
            pad = rng_chance(r, 50);

            if (i > 0) {
                buf_byte(t, ',');
            }

            k = rng_below(r, 3);

            buf_str(t, "{");

            if (k == 1) {
                buf_str(t, e->kind == ENTRY_OTHER_TYPE ? "\"token-type\":1,"
                                                       : "\"token-type\":2,");
            }

            buf_str(t, "\"token-key\"");
            buf_str(t, colons[rng_below(r, nelts(colons))]);
            buf_byte(t, '"');
            b64_encode(t, e->der, e->len, url, pad);
            buf_byte(t, '"');

            if (k != 1) {
                buf_str(t, e->kind == ENTRY_OTHER_TYPE ? ",\"token-type\":1"
                                                       : ",\"token-type\":2");
            }

            if (k == 2) {
                buf_str(t, ",\"not-before\":1700000000");
            }

            if (rng_chance(r, 10)) {
                buf_str(t, ",\"x-extension\":{\"token-key\":\"AAAA\"}");
            }

            buf_str(t, "}");
        }

        buf_str(t, "]}");
        spaces(r, t, 0, 1);

        if (rng_chance(r, 50)) {
            buf_byte(t, '\n');
        }

        return;
    }

    /* PEM, with other blocks and text between the keys */

    eol = rng_chance(r, 70) ? "\n" : "\r\n";

    if (rng_chance(r, 30)) {
        buf_str(t, "# the issuer's keys");
        buf_str(t, eol);
    }

    for (i = 0; i < entries->n; i++) {
        e = &entries->e[i];

        if (rng_chance(r, 15)) {
            buf_str(t, "-----BEGIN CERTIFICATE-----");
            buf_str(t, eol);
            buf_str(t, "MIIBszCCAVmgAwIBAgIUQ0VSVElGSUNBVEU=");
            buf_str(t, eol);
            buf_str(t, "-----END CERTIFICATE-----");
            buf_str(t, eol);
        }

        buf_str(t, "-----BEGIN PUBLIC KEY-----");
        buf_str(t, eol);

        enc.len = 0;
        b64_encode(&enc, e->der, e->len, 0, rng_chance(r, 80));

        width = rng_chance(r, 70) ? 64
                : rng_chance(r, 50) ? 76 : 1 + rng_below(r, 100);

        if (rng_chance(r, 10)) {
            width = enc.len + 1;
        }

        for (start = 0; start < enc.len; start += width) {
            k = enc.len - start < width ? enc.len - start : width;
            buf_add(t, enc.p + start, k);
            buf_str(t, eol);
        }

        buf_str(t, "-----END PUBLIC KEY-----");
        buf_str(t, eol);

        if (rng_chance(r, 20)) {
            buf_str(t, eol);
        }
    }
}


/* the keys a file without mutations holds: each known key once, in the order
 * of first appearance; PP_ERR_INVALID_KEY for a broken one, or none */

static pp_result
reference_keys(const entries_t *entries, buf_t *want)
{
    size_t  i, j;
    int     seen[KEYS_KNOWN];

    memset(seen, 0, sizeof(seen));
    want->len = 0;

    for (i = 0; i < entries->n; i++) {
        if (entries->e[i].kind == ENTRY_BROKEN) {
            return PP_ERR_INVALID_KEY;
        }
    }

    for (i = 0; i < entries->n; i++) {
        j = entries->e[i].key;

        if (entries->e[i].kind == ENTRY_KEY && !seen[j]) {
            seen[j] = 1;
            buf_add(want, known_pss[j], PP_PUBLIC_KEY_LEN);
        }
    }

    return want->len ? PP_OK : PP_ERR_INVALID_KEY;
}


/*
 * The module's reading of a key file (libprivacypass's): the verifier's
 * answer, when verifier_rc is not NULL, and the keys offered, into out.  The
 * text and the room for the keys end against an unreadable page; the room is
 * exactly as large as the keys when exact is set (the size asked first), else
 * as large as the file could need.
 */

static pp_result
read_keys(const u_char *in, size_t len, int directory, int exact,
    buf_t *out, pp_result *verifier_rc)
{
    size_t         cap, got;
    u_char        *text, *room;
    pp_result      rc;
    pp_verifier   *v;

    static guarded_t  gtext, groom;

    text = guarded(&gtext, in, len);
    out->len = 0;

    if (verifier_rc != NULL) {
        v = NULL;
        *verifier_rc = directory
                       ? pp_verifier_new_from_directory((const char *) text,
                                                        len, &v)
                       : pp_verifier_new_from_pem((const char *) text, len,
                                                  &v);
        pp_verifier_free(v);
    }

    cap = (len / 64 + 1) * PP_PUBLIC_KEY_LEN;
    cap = cap > GUARDED_MAX ? GUARDED_MAX : cap;

    if (exact) {
        cap = 0;
        rc = directory
             ? pp_directory_public_keys((const char *) text, len, NULL, 0,
                                        &cap)
             : pp_pem_public_keys((const char *) text, len, NULL, 0, &cap);

        if (rc == PP_OK) {
            fail("no room for the keys, and no error");
        }

        if (rc != PP_ERR_BUFFER_TOO_SMALL) {
            return rc;
        }

        if (cap > GUARDED_MAX) {
            fail("%zu bytes of keys from a file of %zu", cap, len);
        }
    }

    room = guarded(&groom, NULL, cap);
    got = 0;

    rc = directory
         ? pp_directory_public_keys((const char *) text, len, room, cap, &got)
         : pp_pem_public_keys((const char *) text, len, room, cap, &got);

    if (rc == PP_ERR_BUFFER_TOO_SMALL || (exact && rc == PP_OK && got != cap))
    {
        fail("room for %zu bytes of keys, then %d and %zu bytes", cap,
             (int) rc, got);
    }

    if (rc == PP_OK) {
        buf_add(out, room, got);
    }

    return rc;
}


static void
check_key_file(rng_t *r)
{
    int          mutated, made, directory, ref_directory;
    size_t       i, j;
    pp_result    rc, rc2, ref, verifier_rc;
    entries_t    entries;

    static buf_t  t, got, again, want;

    static const char *const  words[] = {
        "\"token-key\"", "\"token-key\":\"", "\"token-type\":2",
        "\"token-type\":1", "\"token-keys\":[", ":", "\"", "=", "==", "{",
        "}", "[", "]", ",", "-----BEGIN PUBLIC KEY-----",
        "-----END PUBLIC KEY-----", "\n", "\r\n", "+", "/", "-", "_", " ",
        "null", "\\u002b"
    };

    make_key_file(r, &entries, &made, &t);

    mutated = rng_chance(r, 35);

    if (mutated) {
        havoc(r, &t, words, nelts(words));
    }

    current.kind = "key file";
    current.input = t.p;
    current.len = t.len;

    /* the kind: the first byte other than whitespace is "{" */

    for (i = 0; i < t.len; i++) {
        if (t.p[i] != ' ' && t.p[i] != '\t' && t.p[i] != '\r'
            && t.p[i] != '\n')
        {
            break;
        }
    }

    ref_directory = i < t.len && t.p[i] == '{';

    {
        u_char  *copy;

        copy = exact_copy(t.p, t.len);
        directory = (int) ngx_http_privacypass_key_file_is_directory(copy,
                                                                     t.len);
        free(copy);
    }

    if (directory != ref_directory || (!mutated && directory != made)) {
        fail("taken for %s", directory ? "a directory" : "PEM");
    }

    rc = read_keys(t.p, t.len, directory, rng_chance(r, 25), &got,
                   &verifier_rc);

    /* the keys offered are the keys verified */

    if (rc != verifier_rc) {
        fail("keys read: %d, the verifier: %d", (int) rc, (int) verifier_rc);
    }

    if (mutated) {
        rc2 = read_keys(t.p, t.len, directory, 1, &again, NULL);

        if (rc2 != rc || got.len != again.len
            || (got.len && memcmp(got.p, again.p, got.len) != 0))
        {
            fail("the same file read twice gives other keys");
        }

    } else {
        ref = reference_keys(&entries, &want);

        if (rc != ref || got.len != want.len
            || (got.len && memcmp(got.p, want.p, got.len) != 0))
        {
            fail("%zu bytes of keys read (%d), %zu expected (%d)", got.len,
                 (int) rc, want.len, (int) ref);
        }

        stats.files_exact++;
    }

    /* whatever the file: whole RFC 9578 keys, each once (the verifier took
     * them all) */

    if (got.len % PP_PUBLIC_KEY_LEN != 0) {
        fail("%zu bytes of keys", got.len);
    }

    for (i = 0; i < got.len; i += PP_PUBLIC_KEY_LEN) {

        if (memcmp(got.p + i, known_pss[0], PSS_PREFIX_LEN) != 0) {
            fail("key %zu is not in the RFC 9578 form",
                 i / PP_PUBLIC_KEY_LEN);
        }

        for (j = 0; j < i; j += PP_PUBLIC_KEY_LEN) {
            if (memcmp(got.p + i, got.p + j, PP_PUBLIC_KEY_LEN) == 0) {
                fail("key %zu offered twice", i / PP_PUBLIC_KEY_LEN);
            }
        }
    }

    stats.keys++;
    stats.keys_read += got.len / PP_PUBLIC_KEY_LEN;

    if (rc == PP_OK) {
        stats.files_ok++;
    }
}


/*
 * The known keys: the RFC's and two others, each in both forms; OpenSSL
 * writes the rsaEncryption one, libprivacypass converts it, and the result
 * must be the RFC 9578 header followed by the same RSAPublicKey
 */

static void
make_known_keys(void)
{
    size_t          i, k, len;
    u_char         *p, spki[PP_PUBLIC_KEY_LEN];
    EVP_PKEY       *pkey;
    const u_char   *q;

    current.kind = "setup";

    for (i = 0; i < PP_PUBLIC_KEY_LEN; i++) {
        sscanf(rfc9578_pks + 2 * i, "%2hhx", &known_pss[0][i]);
    }

    for (k = 0; k < KEYS_KNOWN; k++) {

        if (k == 0) {
            q = known_pss[0] + PSS_PREFIX_LEN;
            pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, MODULUS_PART_LEN);

        } else {
            for (i = 0; i < RSA_SPKI_LEN; i++) {
                sscanf(other_keys[k - 1] + 2 * i, "%2hhx", &known_rsa[k][i]);
            }

            q = known_rsa[k];
            pkey = d2i_PUBKEY(NULL, &q, RSA_SPKI_LEN);
        }

        /* OpenSSL writes the rsaEncryption form */

        if (pkey == NULL || i2d_PUBKEY(pkey, NULL) != RSA_SPKI_LEN) {
            fail("OpenSSL reads no RSA-2048 key %zu", k);
        }

        p = known_rsa[k];
        i2d_PUBKEY(pkey, &p);
        EVP_PKEY_free(pkey);

        if (pp_public_key_spki(known_rsa[k], RSA_SPKI_LEN, spki,
                               sizeof(spki), &len)
            != PP_OK
            || len != PP_PUBLIC_KEY_LEN
            || memcmp(spki + PSS_PREFIX_LEN, known_rsa[k] + RSA_PREFIX_LEN,
                      MODULUS_PART_LEN)
               != 0
            || memcmp(spki, known_pss[0], PSS_PREFIX_LEN) != 0)
        {
            fail("the rsaEncryption key %zu converts to another SPKI", k);
        }

        if (k == 0 && memcmp(spki, known_pss[0], PP_PUBLIC_KEY_LEN) != 0) {
            fail("the RFC's key converts to another SPKI");
        }

        memcpy(known_pss[k], spki, PP_PUBLIC_KEY_LEN);
    }
}


static uint64_t
env_number(const char *name, uint64_t otherwise)
{
    char  *s, *end;
    uint64_t  n;

    s = getenv(name);

    if (s == NULL || *s == '\0') {
        return otherwise;
    }

    n = strtoull(s, &end, 0);

    if (*end != '\0') {
        fprintf(stderr, "fuzz_parse: %s=%s is not a number\n", name, s);
        exit(2);
    }

    return n;
}


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


int
main(int argc, char **argv)
{
    char      *s;
    double     start, elapsed;
    rng_t      r;
    uint64_t   seed, inputs, seconds, first, i;

    current.program = argv[0];

    s = getenv("PRIVACYPASS_FUZZ_SEED");

    if (s != NULL && strcmp(s, "random") == 0) {
        if (RAND_bytes((u_char *) &seed, sizeof(seed)) != 1) {
            return 2;
        }

        seed >>= 1;

    } else {
        seed = env_number("PRIVACYPASS_FUZZ_SEED", DEFAULT_SEED);
    }

    inputs = env_number("PRIVACYPASS_FUZZ_INPUTS", DEFAULT_INPUTS);
    seconds = env_number("PRIVACYPASS_FUZZ_SECONDS", 0);
    first = 0;

    if (getenv("PRIVACYPASS_FUZZ_INPUT") != NULL) {
        first = env_number("PRIVACYPASS_FUZZ_INPUT", 0);
        inputs = 1;
    }

    current.seed = seed;
    __sanitizer_set_death_callback(on_sanitizer_report);
    signal(SIGABRT, on_abort);

    make_known_keys();

    printf("fuzz_parse: seed %llu, %s%llu inputs%s\n",
           (unsigned long long) seed, seconds ? "up to " : "",
           (unsigned long long) inputs, seconds ? " or the time set" : "");
    fflush(stdout);

    start = now();

    for (i = first; i < first + inputs; i++) {

        /* one stream per input: seed and index name it */

        r.s = seed * 0xd1342543de582f3dULL ^ i;
        (void) rng_next(&r);

        current.index = i;
        current.input = NULL;
        current.len = 0;

        switch (rng_below(&r, 10)) {

        case 0:
        case 1:
            check_redeem_answer(&r);
            break;

        case 2:
        case 3:
            check_key_file(&r);
            break;

        default:
            check_authorization(&r);
            break;
        }

        if (seconds && (i & 1023) == 0 && now() - start >= (double) seconds) {
            i++;
            break;
        }
    }

    elapsed = now() - start;

    if (inputs == 1) {
        dump_current();
    }

    printf("fuzz_parse: Authorization values: %llu (bound %llu, unbound %llu, "
           "too long %llu, malformed %llu, wrong length %llu, wrong type %llu, "
           "type not accepted %llu, unknown key %llu; "
           "%llu with a known answer)\n",
           (unsigned long long) stats.auth,
           (unsigned long long)
               stats.verdict[NGX_HTTP_PRIVACYPASS_TOKEN_BOUND],
           (unsigned long long)
               stats.verdict[NGX_HTTP_PRIVACYPASS_TOKEN_UNBOUND],
           (unsigned long long)
               stats.verdict[NGX_HTTP_PRIVACYPASS_TOKEN_TOO_LONG],
           (unsigned long long)
               stats.verdict[NGX_HTTP_PRIVACYPASS_TOKEN_MALFORMED],
           (unsigned long long)
               stats.verdict[NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_LENGTH],
           (unsigned long long)
               stats.verdict[NGX_HTTP_PRIVACYPASS_TOKEN_WRONG_TYPE],
           (unsigned long long)
               stats.verdict[NGX_HTTP_PRIVACYPASS_TOKEN_NOT_ACCEPTED],
           (unsigned long long)
               stats.verdict[NGX_HTTP_PRIVACYPASS_TOKEN_UNKNOWN_KEY],
           (unsigned long long) (stats.auth - stats.expected[EXPECT_NOTHING]));
    printf("fuzz_parse: redeem answers: %llu (valid %llu, spent %llu, "
           "invalid %llu, error %llu; %llu with a known meaning)\n",
           (unsigned long long) stats.redeem,
           (unsigned long long) stats.outcome[NGX_HTTP_PRIVACYPASS_VALID],
           (unsigned long long) stats.outcome[NGX_HTTP_PRIVACYPASS_SPENT],
           (unsigned long long) stats.outcome[NGX_HTTP_PRIVACYPASS_INVALID],
           (unsigned long long) stats.outcome[NGX_HTTP_PRIVACYPASS_ERROR],
           (unsigned long long) stats.meant);
    printf("fuzz_parse: key files: %llu (%llu unmutated, %llu with keys), "
           "%llu keys offered\n",
           (unsigned long long) stats.keys,
           (unsigned long long) stats.files_exact,
           (unsigned long long) stats.files_ok,
           (unsigned long long) stats.keys_read);
    printf("fuzz_parse: %llu inputs in %.1f s (seed %llu), "
           "0 sanitizer reports, 0 failed checks\n",
           (unsigned long long) (i - first), elapsed,
           (unsigned long long) seed);

    return 0;
}
