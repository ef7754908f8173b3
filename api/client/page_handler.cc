#include "api/client/page_handler.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "api/client/spawn.h"
#include "api/client/store_view.h"
#include "core/base/folder_watch.h"

namespace ember::client {

namespace {

bool exists(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0;
}

// The last line that is not empty in the log's last 4 KiB: the handler appends to a log that
// other runs may have made long, and one line of it may be long too.
std::string last_line_of(const std::string& path) {
    constexpr off_t kTail = 4096;
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    struct stat st{};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
    const off_t from = std::max<off_t>(0, st.st_size - kTail);
    std::string tail(static_cast<size_t>(st.st_size - from), '\0');
    const ssize_t n = ::pread(fd.get(), tail.data(), tail.size(), from);
    tail.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return last_line(tail);
}

}  // namespace

Result<PageHandler> PageHandler::start(const StoreRestore& r) {
    // Watched before the start: the handler renames its socket into place.
    FolderWatch watch = FolderWatch::of(r.socket_path);
    // A socket or state file an earlier handler left (killed while it listened) would pass for
    // this one's: the load would read the old state file.
    ::unlink(r.socket_path.c_str());
    ::unlink(r.state_path.c_str());
    const std::string working_set = r.state_path + ".ws";
    std::vector<std::string> argv = {
        r.ember_uffd,    "--socket",   r.socket_path,         "--manifest", r.manifest_url,
        "--write-state", r.state_path, "--write-working-set", working_set};
    if (!r.manifest_sha256.empty())
        argv.insert(argv.end(), {"--manifest-sha256", r.manifest_sha256});
    if (!r.drive_root.empty()) argv.insert(argv.end(), {"--drive-root", r.drive_root});
    for (const auto& id : r.writable_drives) argv.insert(argv.end(), {"--writable-drive", id});
    if (!r.cache_dir.empty()) argv.insert(argv.end(), {"--cache", r.cache_dir});
    if (!r.cache_dir.empty() && r.cache_bytes != 0)
        argv.insert(argv.end(), {"--cache-bytes", std::to_string(r.cache_bytes)});
    auto in = open_output("");
    EMBER_TRY(in);
    auto err = open_output(r.log_path);
    EMBER_TRY(err, "the handler's log");
    auto spawned = spawn_program(std::move(argv), in->get(), err->get(), err->get());
    EMBER_TRY(spawned);
    LoadSnapshot load;
    load.snapshot_path = r.state_path;
    load.mem_backend = MemBackend{MemBackendType::Uffd, r.socket_path};
    load.resume_vm = r.resume_vm;
    load.network_overrides = r.network_overrides;
    PageHandler handler(spawned->pid, std::move(spawned->pidfd), std::move(load));

    const auto deadline = std::chrono::steady_clock::now() + r.timeout;
    while (!exists(r.socket_path)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return fail(r.ember_uffd + " --manifest " + r.manifest_url + ": no socket within " +
                        std::to_string(r.timeout.count()) + " ms");
        if (watch.wait(left, handler.pidfd_.get()) == FolderWatch::Woken::OtherFd &&
            !exists(r.socket_path)) {
            const std::string why = r.log_path.empty() ? "" : ": " + last_line_of(r.log_path);
            return fail(r.ember_uffd + " --manifest " + r.manifest_url + " ended" + why);
        }
    }
    // Written before the socket, where the snapshot has one.
    if (exists(working_set)) handler.load_.working_set_path = working_set;
    return handler;
}

PageHandler::PageHandler(PageHandler&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      load_(std::move(other.load_)) {}

PageHandler& PageHandler::operator=(PageHandler&& other) noexcept {
    if (this != &other) {
        if (pid_ > 0) (void)wait(std::chrono::milliseconds(0));
        pid_ = std::exchange(other.pid_, -1);
        pidfd_ = std::move(other.pidfd_);
        load_ = std::move(other.load_);
    }
    return *this;
}

PageHandler::~PageHandler() {
    if (pid_ > 0) (void)wait(std::chrono::milliseconds(0));
}

int PageHandler::wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return -1;
    pollfd fd{pidfd_.get(), POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(timeout.count())) <= 0) ::kill(pid_, SIGKILL);
    int status = -1;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
}

}  // namespace ember::client
