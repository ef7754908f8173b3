#include "jailer/beneath.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

namespace ember::jailer {

Result<UniqueFd> open_dirs_beneath(const std::string& root, const std::string& relative) {
    constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd dir(::open(root.c_str(), kFlags));
    if (!dir.valid()) return fail_errno(root);
    std::string reached = root;
    size_t start = 0;
    while (start < relative.size()) {
        size_t end = relative.find('/', start);
        if (end == std::string::npos) end = relative.size();
        const std::string name = relative.substr(start, end - start);
        start = end + 1;
        if (name.empty() || name == ".") continue;
        reached += "/" + name;
        if (name == "..") return fail(reached + ": leaves the jail");
        if (::mkdirat(dir.get(), name.c_str(), 0755) < 0 && errno != EEXIST)
            return fail_errno("mkdir " + reached);
        UniqueFd next(::openat(dir.get(), name.c_str(), kFlags));
        if (!next.valid()) {
            if (errno == ELOOP || errno == ENOTDIR)
                return fail(reached +
                            ": a symbolic link or not a directory; the jailer will not "
                            "follow it");
            return fail_errno(reached);
        }
        dir = std::move(next);
    }
    return dir;
}

}  // namespace ember::jailer
