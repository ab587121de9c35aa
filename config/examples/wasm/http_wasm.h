/* The http-wasm handler ABI (https://http-wasm.io/http-handler-abi/) for guests in C,
 * built freestanding: clang --target=wasm32 -nostdlib (see scripts/build-wasm-examples.sh). */
#ifndef HTTP_WASM_H
#define HTTP_WASM_H

#include <stdint.h>

#define HTTP_WASM_IMPORT(name) __attribute__((import_module("http_handler"), import_name(#name)))
#define HTTP_WASM_EXPORT(name) __attribute__((export_name(#name)))

enum { HEADER_REQUEST = 0, HEADER_RESPONSE = 1, HEADER_REQUEST_TRAILERS = 2, HEADER_RESPONSE_TRAILERS = 3 };
enum { BODY_REQUEST = 0, BODY_RESPONSE = 1 };
enum { FEATURE_BUFFER_REQUEST = 1, FEATURE_BUFFER_RESPONSE = 2, FEATURE_TRAILERS = 4 };
enum { LOG_DEBUG = -1, LOG_INFO = 0, LOG_WARN = 1, LOG_ERROR = 2, LOG_NONE = 3 };

HTTP_WASM_IMPORT(log) void log_message(int32_t level, const char *message, uint32_t message_len);
HTTP_WASM_IMPORT(log_enabled) int32_t log_enabled(int32_t level);
HTTP_WASM_IMPORT(get_config) uint32_t get_config(char *buf, uint32_t buf_limit);
HTTP_WASM_IMPORT(enable_features) uint32_t enable_features(uint32_t features);
HTTP_WASM_IMPORT(get_method) uint32_t get_method(char *buf, uint32_t buf_limit);
HTTP_WASM_IMPORT(set_method) void set_method(const char *name, uint32_t name_len);
HTTP_WASM_IMPORT(get_uri) uint32_t get_uri(char *buf, uint32_t buf_limit);
HTTP_WASM_IMPORT(set_uri) void set_uri(const char *uri, uint32_t uri_len);
HTTP_WASM_IMPORT(get_protocol_version) uint32_t get_protocol_version(char *buf, uint32_t buf_limit);
HTTP_WASM_IMPORT(get_header_names) uint64_t get_header_names(uint32_t kind, char *buf, uint32_t buf_limit);
HTTP_WASM_IMPORT(get_header_values)
uint64_t get_header_values(uint32_t kind, const char *name, uint32_t name_len, char *buf, uint32_t buf_limit);
HTTP_WASM_IMPORT(set_header_value)
void set_header_value(uint32_t kind, const char *name, uint32_t name_len, const char *value, uint32_t value_len);
HTTP_WASM_IMPORT(add_header_value)
void add_header_value(uint32_t kind, const char *name, uint32_t name_len, const char *value, uint32_t value_len);
HTTP_WASM_IMPORT(remove_header) void remove_header(uint32_t kind, const char *name, uint32_t name_len);
HTTP_WASM_IMPORT(read_body) uint64_t read_body(uint32_t kind, char *buf, uint32_t buf_limit);
HTTP_WASM_IMPORT(write_body) void write_body(uint32_t kind, const char *buf, uint32_t buf_len);
HTTP_WASM_IMPORT(get_status_code) uint32_t get_status_code(void);
HTTP_WASM_IMPORT(set_status_code) void set_status_code(uint32_t status_code);
HTTP_WASM_IMPORT(get_source_addr) uint32_t get_source_addr(char *buf, uint32_t buf_limit);

/* handle_request's result: the context for handle_response in the high 32 bits, 1 to call the
 * next handler (0 when the guest answered itself) in the low ones. */
static inline uint64_t ctx_next(uint32_t ctx, int next) { return ((uint64_t)ctx << 32) | (next ? 1 : 0); }

/* What a freestanding build lacks and clang may call. */
void *memcpy(void *dst, const void *src, unsigned long n);
void *memset(void *dst, int c, unsigned long n);

static inline uint32_t cstrlen(const char *s) {
    uint32_t n = 0;
    while (s[n]) n++;
    return n;
}

static inline int bytes_equal(const char *a, uint32_t a_len, const char *b, uint32_t b_len) {
    if (a_len != b_len) return 0;
    for (uint32_t i = 0; i < a_len; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

#endif
