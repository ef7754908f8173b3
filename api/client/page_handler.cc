#include "api/client/page_handler.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "api/client/spawn.h"
#include "core/base/folder_watch.h"

namespace ember::client {

namespace {

bool exists(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0;
}

std::string last_line(const std::string& path) {
    std::ifstream in(path);
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    return last;
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
            const std::string why = r.log_path.empty() ? "" : ": " + last_line(r.log_path);
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
