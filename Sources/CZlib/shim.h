// zlib (Debian: zlib1g-dev) for the WebSocket layer's permessage-deflate (RFC 7692).
#include <zlib.h>
