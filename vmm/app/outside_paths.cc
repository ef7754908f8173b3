#include "vmm/app/outside_paths.h"

#include <fcntl.h>

namespace ember {

Result<UniqueFd> open_sink(const std::string& field, const std::string& path, int create) {
    // Read and write, as Firecracker opens it: a FIFO's open then needs no reader (the SDK makes
    // its metrics FIFO and may never read it), and what a full FIFO cannot take is dropped.
    auto fd = open_file(path, O_RDWR | O_APPEND | O_NONBLOCK | create, FileKinds::RegularOrFifo);
    EMBER_TRY(fd, field + " " + path);
    return fd;
}

Outcome check_readable(const std::string& field, const std::string& path, FileKinds kinds) {
    if (auto fd = open_file(path, O_RDONLY, kinds); !fd)
        return fail(fd.error().message + " (" + field + ": " + path + ")");
    return {};
}

}  // namespace ember
