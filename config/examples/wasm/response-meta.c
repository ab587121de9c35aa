/* Response metadata. Enables buffer_response and trailers while initializing; handle_response
 *  - sets X-Wasm-Is-Error to 1 when the next handler failed (here: the gateway's own 502 or 504
 *    for an unreachable or timed-out upstream), 0 otherwise;
 *  - counts the backend's response trailers into X-Wasm-Backend-Trailers and adds the trailer
 *    X-Wasm-Trailer: done (sent on HTTP/2; a held response on HTTP/1.1 goes out with a
 *    Content-Length, which has no place for trailers).
 * With the guest config "stream" it does not hold the response (is_error then reaches the guest
 * with the response head alone) and adds no trailer.
 * handle_request asks for buffer_request, which a host grants only while the guest initializes,
 * and reports the answer in X-Wasm-Late-Buffer-Request. */
#include "http_wasm.h"

static int streaming; /* guestConfig "stream": the response is not held (no body, no trailers to change) */

HTTP_WASM_EXPORT(_initialize) void initialize(void) {
    char config[16];
    uint32_t len = get_config(config, sizeof config);
    streaming = bytes_equal(config, len, "stream", 6);
    enable_features(streaming ? FEATURE_TRAILERS : (FEATURE_BUFFER_RESPONSE | FEATURE_TRAILERS));
}

HTTP_WASM_EXPORT(handle_request) uint64_t handle_request(void) {
    /* Too late for buffer_request: the body is on its way to the backend. The result says so. */
    uint32_t granted = enable_features(FEATURE_BUFFER_REQUEST);
    set_header_value(HEADER_RESPONSE, "X-Wasm-Late-Buffer-Request", 26, granted & FEATURE_BUFFER_REQUEST ? "1" : "0", 1);
    return ctx_next(0, 1);
}

HTTP_WASM_EXPORT(handle_response) void handle_response(uint32_t ctx, uint32_t is_error) {
    set_header_value(HEADER_RESPONSE, "X-Wasm-Is-Error", 15, is_error ? "1" : "0", 1);
    char names[1024];
    uint32_t count = (uint32_t)(get_header_names(HEADER_RESPONSE_TRAILERS, names, sizeof names) >> 32);
    char digit = (char)('0' + (count > 9 ? 9 : count));
    set_header_value(HEADER_RESPONSE, "X-Wasm-Backend-Trailers", 23, &digit, 1);
    if (!streaming) add_header_value(HEADER_RESPONSE_TRAILERS, "X-Wasm-Trailer", 14, "done", 4);
}
