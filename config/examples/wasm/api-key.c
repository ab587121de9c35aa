/* API-key check: a request whose X-API-Key header equals the guest config goes on to the
 * backend; any other gets a 401 the guest writes itself. */
#include "http_wasm.h"

static char key[256];
static uint32_t key_len;
static char value[256];

HTTP_WASM_EXPORT(_initialize) void initialize(void) {
    key_len = get_config(key, sizeof key);
    if (key_len > sizeof key) key_len = 0; /* too long: no key matches */
}

HTTP_WASM_EXPORT(handle_request) uint64_t handle_request(void) {
    uint64_t count_len = get_header_values(HEADER_REQUEST, "X-API-Key", 9, value, sizeof value);
    uint32_t count = (uint32_t)(count_len >> 32), len = (uint32_t)count_len;
    /* One value, NUL-terminated, that fits and matches. */
    if (key_len > 0 && count == 1 && len <= sizeof value && bytes_equal(value, len - 1, key, key_len))
        return ctx_next(0, 1);
    const char *body = "{\"error\":\"a valid X-API-Key header is required\"}";
    set_status_code(401);
    set_header_value(HEADER_RESPONSE, "Content-Type", 12, "application/json", 16);
    set_header_value(HEADER_RESPONSE, "WWW-Authenticate", 16, "ApiKey", 6);
    write_body(BODY_RESPONSE, body, cstrlen(body));
    log_message(LOG_INFO, "api-key: request refused", 24);
    return ctx_next(0, 0);
}

HTTP_WASM_EXPORT(handle_response) void handle_response(uint32_t ctx, uint32_t is_error) {}
