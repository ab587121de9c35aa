/* Header rewriting: removes the request header X-Debug before the backend sees it, tells the
 * backend the request passed the guest (X-Wasm-Seen: 1), and adds a response header taken from
 * the guest config, "Name: value" (default "X-Wasm-Example: header-rewrite"). */
#include "http_wasm.h"

static char config[256];
static uint32_t name_len, value_start, config_len;

HTTP_WASM_EXPORT(_initialize) void initialize(void) {
    config_len = get_config(config, sizeof config);
    if (config_len == 0 || config_len > sizeof config) {
        const char *fallback = "X-Wasm-Example: header-rewrite";
        config_len = cstrlen(fallback);
        memcpy(config, fallback, config_len);
    }
    name_len = 0;
    while (name_len < config_len && config[name_len] != ':') name_len++;
    value_start = name_len + 1;
    while (value_start < config_len && config[value_start] == ' ') value_start++;
    if (value_start > config_len) value_start = config_len;
}

HTTP_WASM_EXPORT(handle_request) uint64_t handle_request(void) {
    remove_header(HEADER_REQUEST, "X-Debug", 7);
    set_header_value(HEADER_REQUEST, "X-Wasm-Seen", 11, "1", 1);
    return ctx_next(0, 1);
}

HTTP_WASM_EXPORT(handle_response) void handle_response(uint32_t ctx, uint32_t is_error) {
    set_header_value(HEADER_RESPONSE, config, name_len, config + value_start, config_len - value_start);
}
