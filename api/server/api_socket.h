// The API socket: made before anything else that takes time (a --config-file's boot), so clients
// can connect at once; their requests wait in the backlog until the server serves them.
#pragma once

#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::api {

// Binds and listens on a Unix socket made 0600. An existing file at the path is refused, as
// Firecracker refuses it (its message, then ours). With replace_stale, a socket file nobody
// listens on (a crashed VMM's) is replaced instead; embers doing so in one directory take turns
// under a lock on it, so none can unlink a socket another has just bound.
Result<UniqueFd> listen_unix_socket(const std::string& path, bool replace_stale);

}  // namespace ember::api
