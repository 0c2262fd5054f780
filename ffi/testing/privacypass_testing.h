/*
 * libprivacypass_testing: libprivacypass plus one test-only export. Never shipped; the C, Go and
 * Python tests of the panic boundary link or load it instead of libprivacypass.
 */
#ifndef PRIVACYPASS_TESTING_H
#define PRIVACYPASS_TESTING_H

#include "privacypass.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * FOR TESTS ONLY: panics inside the panic boundary and so returns PP_ERR_PANIC, proving that no
 * panic crosses into C. The panic message goes to stderr.
 */
enum pp_result pp_test_panic(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PRIVACYPASS_TESTING_H */
