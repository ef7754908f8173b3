// The paths the API names for the Controller, opened the way it needs them: checked for reading
// now (so a FIFO or a device is refused at the PUT, not found when the VM starts), or opened as a
// log or metrics sink that never blocks a thread.
#pragma once

#include <string>

#include "core/actions.h"
#include "core/base/error.h"
#include "core/base/open_file.h"
#include "core/base/unique_fd.h"

namespace ember {

// Opens a log or metrics destination: a regular file or a FIFO, with or without a reader yet. It
// stays non-blocking, so a reader that stalls or never comes costs the lines it does not take,
// never a thread. As in Firecracker, a log file must exist already; a metrics file is created.
Result<UniqueFd> open_sink(const std::string& field, const std::string& path, int create);

// Why `path` cannot be read, in Firecracker's words, then which field named it: "No such file or
// directory (os error 2) (boot-source.kernel_image_path: /x)". Opened rather than access()ed, so
// that a FIFO or a device is refused now, not found when the VM starts.
Outcome check_readable(const std::string& field, const std::string& path,
                       FileKinds kinds = FileKinds::Regular);

}  // namespace ember
