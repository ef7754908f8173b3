// The jailer's own process, made clean before it execs ember: no inherited file descriptors
// beyond stdio, no inherited environment, and the resource limits asked for.
#pragma once

#include <optional>
#include <vector>

#include "core/base/error.h"
#include "jailer/options.h"

namespace ember::jailer {

// Closes every descriptor above 2 (what the parent left open must not reach the jail) but `keep`,
// which must be an open pipe or socket and is made to survive the exec.
Result<void> close_inherited_fds(std::optional<int> keep = std::nullopt);

// Empties the environment: ember gets only what the jailer passes on its command line.
void clear_environment();

// setrlimit() for each --resource-limit, soft and hard; unless no-file is given, it is bounded to
// 2048, as Firecracker's jailer does.
Result<void> apply_resource_limits(const std::vector<ResourceLimit>& limits);

}  // namespace ember::jailer
