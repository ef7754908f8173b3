#include "api/client/store_view.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <string_view>

#include "api/client/spawn.h"
#include "api/json/api_bodies.h"
#include "core/base/unique_fd.h"

namespace ember::client {
namespace {

// What ember-snapshot view prints is a load body and a line or two: more is not its.
constexpr size_t kMaxOutput = 64 << 10;

// The exit status of ember-snapshot find-view where no view is made.
constexpr int kNoView = 3;

}  // namespace

std::string last_line(std::string_view text) {
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    const size_t at = text.rfind('\n');
    return std::string(at == std::string_view::npos ? text : text.substr(at + 1));
}

std::vector<std::string> view_command(const StoreView& v, const char* command) {
    std::vector<std::string> argv = {v.ember_snapshot, command, "--cache", v.cache_dir};
    if (v.cache_bytes != 0)
        argv.insert(argv.end(), {"--cache-bytes", std::to_string(v.cache_bytes)});
    if (!v.manifest_sha256.empty())
        argv.insert(argv.end(), {"--manifest-sha256", v.manifest_sha256});
    if (!v.drive_root.empty()) argv.insert(argv.end(), {"--drive-root", v.drive_root});
    for (const auto& id : v.writable_drives) argv.insert(argv.end(), {"--writable-drive", id});
    argv.push_back(v.manifest_url);
    return argv;
}

namespace {

// ember-snapshot `command` run to its end within the view's bound; nullopt where find-view found
// none.
Result<std::optional<LoadSnapshot>> run_view(const StoreView& v, const char* command) {
    const std::string what = v.ember_snapshot + " " + command + " " + v.manifest_url;
    std::array<int, 2> out{-1, -1}, err{-1, -1};
    if (::pipe2(out.data(), O_CLOEXEC) != 0) return fail_errno(what + ": a pipe");
    UniqueFd out_read(out[0]), out_write(out[1]);
    if (::pipe2(err.data(), O_CLOEXEC) != 0) return fail_errno(what + ": a pipe");
    UniqueFd err_read(err[0]), err_write(err[1]);
    auto in = open_output("");
    EMBER_TRY(in);
    auto spawned =
        spawn_program(view_command(v, command), in->get(), out_write.get(), err_write.get());
    EMBER_TRY(spawned, what);
    out_write = UniqueFd();
    err_write = UniqueFd();

    std::array<std::string, 2> got;
    // Its output, then its end (a pidfd, readable once it has ended), all within the bound.
    std::array<pollfd, 3> fds{{{out_read.get(), POLLIN, 0},
                               {err_read.get(), POLLIN, 0},
                               {spawned->pidfd.get(), POLLIN, 0}}};
    const auto deadline = std::chrono::steady_clock::now() + v.timeout;
    bool timed_out = false;
    while (fds[0].fd >= 0 || fds[1].fd >= 0 || fds[2].fd >= 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        const int ready =
            left.count() <= 0 ? 0 : ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
        if (ready == 0) {
            timed_out = true;
            break;
        }
        if (ready < 0) continue;  // interrupted: no revents to read
        if (fds[2].revents != 0) fds[2].fd = -1;
        for (size_t i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            char buffer[4096];
            const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0 && got[i].size() < kMaxOutput)
                got[i].append(buffer, static_cast<size_t>(n));
            else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                fds[i].fd = -1;
        }
    }
    if (timed_out) ::kill(spawned->pid, SIGKILL);
    int status = -1;
    ::waitpid(spawned->pid, &status, 0);
    if (timed_out)
        return fail(what + ": no answer within " + std::to_string(v.timeout.count()) + " ms");
    if (WIFEXITED(status) && WEXITSTATUS(status) == kNoView && std::string_view(command) != "view")
        return std::nullopt;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(what + " failed" + (got[1].empty() ? "" : ": " + last_line(got[1])));
    auto load = json::parse_body<LoadSnapshot>(got[0]);
    EMBER_TRY(load, what + ": what it printed");
    if (!load->mem_backend || load->uffd()) return fail(what + ": printed no File load");
    load->resume_vm = v.resume_vm;
    load->network_overrides = v.network_overrides;
    return std::optional<LoadSnapshot>(std::move(*load));
}

}  // namespace

Result<LoadSnapshot> view_load(const StoreView& v) {
    auto load = run_view(v, "view");
    EMBER_TRY(load);
    if (!*load) return fail(v.ember_snapshot + " view " + v.manifest_url + ": made no view");
    return std::move(**load);
}

Result<std::optional<LoadSnapshot>> find_view_load(const StoreView& v) {
    return run_view(v, "find-view");
}

}  // namespace ember::client
