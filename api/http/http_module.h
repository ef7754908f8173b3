// The API socket and the HTTP server behind it. ember listens on the socket itself, before the
// server module (and the OpenSSL it drags in) is loaded, so clients can connect at once; their
// requests wait in the backlog for the few milliseconds the module takes.
#pragma once

#include <memory>

#include "api/http/http_types.h"
#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::api {

// Binds and listens on a Unix socket made 0600. An existing file at the path is refused, as
// Firecracker refuses it (its message, then ours). With replace_stale, a socket file nobody
// listens on (a crashed VMM's) is replaced instead; embers doing so in one directory take turns
// under a lock on it, so none can unlink a socket another has just bound.
Result<UniqueFd> listen_unix_socket(const std::string& path, bool replace_stale);

// Loads libember_api_http.so from beside the ember binary and starts serving options.listen_fd.
Result<std::unique_ptr<HttpServer>> start_http_server(const HttpServerOptions& options);

}  // namespace ember::api
