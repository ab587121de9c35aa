/* Body redaction: holds the response (buffer_response) and replaces every occurrence of the
 * word in the guest config (default "secret") with asterisks of the same length. */
#include "http_wasm.h"

static char word[64];
static uint32_t word_len;
static char body[65536];

HTTP_WASM_EXPORT(_initialize) void initialize(void) {
    word_len = get_config(word, sizeof word);
    if (word_len == 0 || word_len > sizeof word) {
        memcpy(word, "secret", 6);
        word_len = 6;
    }
    enable_features(FEATURE_BUFFER_RESPONSE);
}

HTTP_WASM_EXPORT(handle_request) uint64_t handle_request(void) { return ctx_next(0, 1); }

HTTP_WASM_EXPORT(handle_response) void handle_response(uint32_t ctx, uint32_t is_error) {
    uint32_t len = 0;
    for (;;) {
        if (len == sizeof body) return; /* larger than this guest handles: leave it as it is */
        uint64_t eof_len = read_body(BODY_RESPONSE, body + len, sizeof body - len);
        len += (uint32_t)eof_len;
        if (eof_len >> 32) break;
    }
    for (uint32_t i = 0; i + word_len <= len; i++) {
        if (bytes_equal(body + i, word_len, word, word_len)) {
            memset(body + i, '*', word_len);
            i += word_len - 1;
        }
    }
    write_body(BODY_RESPONSE, body, len);
}
