// Opening a path that came from outside (the API, a config file, the command line) without letting
// it block ember: open() of a FIFO waits for its other end for ever, and on the VMM thread that
// wait would also keep SIGTERM, read from a signalfd there, from ever being served.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember {

// The kinds of file a caller accepts; anything else is refused once open.
enum class FileKinds { Regular, RegularOrBlockDevice, RegularOrFifo, Any };

// Opens `path` with `flags` plus O_NONBLOCK and O_CLOEXEC, refuses a file not of `kinds` ("not a
// regular file") or one of the kernel's interfaces in /proc, /sys and their kin, and hands back a
// blocking descriptor unless `flags` held O_NONBLOCK. The errors name neither path nor field, which
// the caller puts before them; an OS error is worded as Firecracker words it, "No such file or
// directory (os error 2)", for the scripts that match it.
Result<UniqueFd> open_file(const std::string& path, int flags, FileKinds kinds = FileKinds::Regular,
                           mode_t mode = 0600);

// The whole of a small regular file from outside (a config file, a CPU template), refused unread
// when it holds more than `most` bytes. Errors begin with the path.
Result<std::string> read_small_file(const std::string& path, size_t most);
// The same from an open regular file, from its start; the errors name no file.
Result<std::string> read_small(int fd, size_t most);

}  // namespace ember
