#include "core/base/open_file.h"

#include <fcntl.h>
#include <sys/stat.h>

namespace ember {
namespace {

bool accepts(FileKinds kinds, mode_t mode) {
    switch (kinds) {
        case FileKinds::Regular: return S_ISREG(mode);
        case FileKinds::RegularOrBlockDevice: return S_ISREG(mode) || S_ISBLK(mode);
        case FileKinds::RegularOrFifo: return S_ISREG(mode) || S_ISFIFO(mode);
        case FileKinds::Any: return true;
    }
    return false;
}

const char* refusal(FileKinds kinds) {
    switch (kinds) {
        case FileKinds::RegularOrBlockDevice: return "not a regular file or block device";
        case FileKinds::RegularOrFifo: return "not a regular file or FIFO";
        default: return "not a regular file";
    }
}

}  // namespace

Result<UniqueFd> open_file(const std::string& path, int flags, FileKinds kinds, mode_t mode) {
    UniqueFd fd(::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC, mode));
    if (!fd.valid()) {
        // What O_NONBLOCK makes of a FIFO opened for writing that nobody reads (or of a socket or
        // a device without its driver): never a regular file.
        if (errno == ENXIO && (flags & O_ACCMODE) == O_WRONLY) {
            if (kinds != FileKinds::RegularOrFifo && kinds != FileKinds::Any)
                return fail(refusal(kinds));
            return fail("a FIFO with no reader: " + os_error(ENXIO));
        }
        return fail(os_error(errno));
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) < 0) return fail(os_error(errno));
    if (!accepts(kinds, st.st_mode)) return fail(refusal(kinds));
    if (!(flags & O_NONBLOCK)) {
        const int now = ::fcntl(fd.get(), F_GETFL);
        if (now < 0 || ::fcntl(fd.get(), F_SETFL, now & ~O_NONBLOCK) < 0)
            return fail(os_error(errno));
    }
    return fd;
}

}  // namespace ember
