/* The smallest guest: calls the next handler and changes nothing. For measuring the host's cost. */
#include "http_wasm.h"

HTTP_WASM_EXPORT(handle_request) uint64_t handle_request(void) { return ctx_next(0, 1); }

HTTP_WASM_EXPORT(handle_response) void handle_response(uint32_t ctx, uint32_t is_error) {}
