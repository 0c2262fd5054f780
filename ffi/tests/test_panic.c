/*
 * The panic boundary seen from C: libprivacypass_testing's pp_test_panic panics inside
 * ffi_panic_boundary!, the call answers PP_ERR_PANIC instead of unwinding into C, and the
 * library keeps working afterwards. Linked against libprivacypass_testing (libprivacypass plus
 * pp_test_panic), not the production library.
 */
#include <string.h>

#include "privacypass_testing.h"
#include "testing.h"

int main(void) {
    uint8_t challenge[512];
    uint8_t token[PP_TOKEN_LEN];
    size_t challenge_len = 0;
    pp_issuer *issuer = NULL;

    EXPECT_RC(pp_test_panic(), PP_ERR_PANIC);
    /* Twice: the first caught panic left nothing behind that breaks the next one. */
    EXPECT_RC(pp_test_panic(), PP_ERR_PANIC);
    CHECK(strcmp(pp_version(), PP_VERSION) == 0);

    /* A whole issuance after the panics. */
    OK(pp_issuer_generate(&issuer));
    REQUIRE(issuer != NULL);
    OK(pp_challenge_encode(PP_TOKEN_TYPE_BLIND_RSA, "issuer.example", 14, NULL, 0,
                           "origin.example", 14, challenge, sizeof challenge, &challenge_len));
    make_token(issuer, challenge, challenge_len, token);
    pp_issuer_free(issuer);

    if (failures > 0) {
        fprintf(stderr, "test_panic: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("test_panic: all %d checks passed\n", checks);
    return 0;
}
