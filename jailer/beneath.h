// Directories and files inside a jail, reached without following a symbolic link: a jail that
// outlived an earlier ember (which owned its root) may hold links pointing anywhere on the host,
// and the jailer runs as root.
#pragma once

#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::jailer {

// The directory `relative` (e.g. "dev/net") under `root`, each missing component made 0755,
// opened O_DIRECTORY. A component that is a symbolic link, not a directory, or ".." is an error.
Result<UniqueFd> open_dirs_beneath(const std::string& root, const std::string& relative);

}  // namespace ember::jailer
