/* Request body check and rewrite. Enables buffer_request (and trailers) while initializing, so
 * the gateway holds each request body before handle_request runs. Then:
 *  - a body containing the word in the guest config (default "forbidden") is answered with a
 *    400 by the guest itself: the backend never sees it;
 *  - otherwise the value of every JSON "password" field becomes "***" (the body changes length;
 *    the gateway sends it on with a matching Content-Length);
 *  - the request header X-Body-Bytes-Seen tells the backend how many bytes the client sent, and
 *    a request trailer X-Checksum (chunked bodies) is copied into the header X-Trailer-Checksum. */
#include "http_wasm.h"

static char word[64];
static uint32_t word_len;
static char body[262144];
static char out[2 * sizeof body];

HTTP_WASM_EXPORT(_initialize) void initialize(void) {
    word_len = get_config(word, sizeof word);
    if (word_len == 0 || word_len > sizeof word) {
        memcpy(word, "forbidden", 9);
        word_len = 9;
    }
    enable_features(FEATURE_BUFFER_REQUEST | FEATURE_TRAILERS);
}

static uint32_t decimal(uint32_t value, char *buf) {
    char digits[10];
    uint32_t n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    for (uint32_t i = 0; i < n; i++) buf[i] = digits[n - 1 - i];
    return n;
}

static uint64_t answer(uint32_t status, const char *json) {
    set_status_code(status);
    set_header_value(HEADER_RESPONSE, "Content-Type", 12, "application/json", 16);
    write_body(BODY_RESPONSE, json, cstrlen(json));
    return ctx_next(0, 0);
}

static int contains(const char *text, uint32_t len, const char *needle, uint32_t needle_len) {
    for (uint32_t i = 0; i + needle_len <= len; i++)
        if (bytes_equal(text + i, needle_len, needle, needle_len)) return 1;
    return 0;
}

/* Copies body to out with every "password": "<value>" value replaced by "***". */
static uint32_t redact_passwords(uint32_t len) {
    static const char key[] = "\"password\"";
    const uint32_t key_len = sizeof key - 1;
    uint32_t o = 0, i = 0;
    while (i < len) {
        if (i + key_len <= len && bytes_equal(body + i, key_len, key, key_len)) {
            uint32_t j = i + key_len;
            while (j < len && (body[j] == ' ' || body[j] == ':')) j++;
            if (j < len && body[j] == '"') {
                memcpy(out + o, body + i, j + 1 - i);
                o += j + 1 - i;
                memcpy(out + o, "***\"", 4);
                o += 4;
                j++;
                while (j < len && body[j] != '"') j += body[j] == '\\' ? 2 : 1;
                i = j + 1;
                continue;
            }
        }
        out[o++] = body[i++];
    }
    return o;
}

HTTP_WASM_EXPORT(handle_request) uint64_t handle_request(void) {
    uint32_t len = 0;
    for (;;) {
        if (len == sizeof body) return answer(413, "{\"error\":\"the body is larger than this filter reads\"}");
        uint64_t eof_len = read_body(BODY_REQUEST, body + len, sizeof body - len);
        len += (uint32_t)eof_len;
        if (eof_len >> 32) break;
    }
    if (contains(body, len, word, word_len)) return answer(400, "{\"error\":\"the body holds a forbidden word\"}");

    char number[10];
    set_header_value(HEADER_REQUEST, "X-Body-Bytes-Seen", 17, number, decimal(len, number));
    char checksum[256];
    uint64_t count_len = get_header_values(HEADER_REQUEST_TRAILERS, "X-Checksum", 10, checksum, sizeof checksum);
    uint32_t checksum_len = (uint32_t)count_len;
    if ((count_len >> 32) > 0 && checksum_len <= sizeof checksum)
        set_header_value(HEADER_REQUEST, "X-Trailer-Checksum", 18, checksum, checksum_len - 1);

    if (len > 0) write_body(BODY_REQUEST, out, redact_passwords(len));
    return ctx_next(0, 1);
}

HTTP_WASM_EXPORT(handle_response) void handle_response(uint32_t ctx, uint32_t is_error) {}
