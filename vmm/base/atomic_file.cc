#include "vmm/base/atomic_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <utility>

namespace ember {
namespace {

std::string directory_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Result<AtomicFile> AtomicFile::create(const std::string& path) {
    auto slash = path.rfind('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    if (name.empty()) return fail(path + ": names a directory, not a file");
    std::string temp = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) +
                       "." + name + ".ember-tmp-XXXXXX";
    int fd = ::mkostemp(temp.data(), O_CLOEXEC);
    if (fd < 0) return fail_errno(path);
    return AtomicFile(path, std::move(temp), UniqueFd(fd));
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temp_(std::exchange(other.temp_, {})),
      fd_(std::move(other.fd_)) {}

AtomicFile::~AtomicFile() {
    if (!temp_.empty()) ::unlink(temp_.c_str());
}

Result<void> AtomicFile::commit() {
    if (temp_.empty()) return fail(path_ + ": already committed");
    if (::fsync(fd_.get()) < 0) return fail_errno(path_);
    if (::rename(temp_.c_str(), path_.c_str()) < 0) return fail_errno(path_);
    temp_.clear();
    // The rename itself is durable only once the directory is.
    UniqueFd dir(::open(directory_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.valid()) ::fsync(dir.get());
    return {};
}

}  // namespace ember
