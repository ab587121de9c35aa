/* A guest that fails on purpose, for the isolation tests: by the request path it traps
 * (/trap), loops forever (/loop), loops forever calling the host (/slow: for the wall-time
 * limit) or grows its memory without end (/grow); any other request goes on with the
 * response header X-Wasm-Survived: 1. */
#include "http_wasm.h"

static char uri[512];

static int path_is(uint32_t len, const char *path) {
    uint32_t plen = cstrlen(path);
    return len >= plen && bytes_equal(uri, plen, path, plen) && (len == plen || uri[plen] == '?');
}

HTTP_WASM_EXPORT(handle_request) uint64_t handle_request(void) {
    uint32_t len = get_uri(uri, sizeof uri);
    if (len > sizeof uri) len = 0;
    if (path_is(len, "/trap")) __builtin_trap();
    if (path_is(len, "/loop")) {
        volatile uint32_t spin = 0;
        for (;;) spin++;
    }
    if (path_is(len, "/slow")) {
        for (;;) log_enabled(LOG_DEBUG);
    }
    if (path_is(len, "/grow")) {
        for (;;) {
            if (__builtin_wasm_memory_grow(0, 16) == (unsigned long)-1) __builtin_trap();
        }
    }
    return ctx_next(0, 1);
}

HTTP_WASM_EXPORT(handle_response) void handle_response(uint32_t ctx, uint32_t is_error) {
    set_header_value(HEADER_RESPONSE, "X-Wasm-Survived", 15, "1", 1);
}
