#include "tests/support/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/base/folder_watch.h"

namespace ember::testing {

Result<QmpClient> QmpClient::connect(const std::string& path, int timeout_ms) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return fail("QMP socket path too long: " + path);
    std::memcpy(addr.sun_path, path.data(), path.size());
    // Woken when QEMU binds its socket, as the tests' ember clients are when ember links its own.
    // QEMU binds before it listens: a connect in between is refused, and asked again within 1 ms.
    FolderWatch watch = FolderWatch::of(path);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd.valid()) return fail_errno("socket");
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
            QmpClient client(std::move(fd));
            auto greeting = client.line(timeout_ms);
            EMBER_TRY(greeting);
            if (greeting->find("\"QMP\"") == std::string::npos)
                return fail("QMP: no greeting: " + *greeting);
            EMBER_TRY(client.call(R"({"execute": "qmp_capabilities"})", timeout_ms));
            return client;
        }
        const int err = errno;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return fail_errno("connect " + path, err);
        watch.wait(std::min(left, std::chrono::milliseconds(1)));
    }
}

Result<std::string> QmpClient::line(int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (auto nl = buffered_.find('\n'); nl != std::string::npos) {
            std::string l = buffered_.substr(0, nl);
            buffered_.erase(0, nl + 1);
            return l;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        pollfd p{fd_.get(), POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1)
            return fail("QMP: no reply within " + std::to_string(timeout_ms) + " ms");
        char chunk[4096];
        ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
        if (n <= 0) return fail("QMP: QEMU closed the connection");
        buffered_.append(chunk, static_cast<size_t>(n));
    }
}

Result<std::string> QmpClient::call(const std::string& command, int timeout_ms) {
    const std::string out = command + "\n";
    if (::send(fd_.get(), out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
        return fail_errno("QMP send");
    for (;;) {
        auto reply = line(timeout_ms);
        if (!reply || reply->find("\"event\"") == std::string::npos) return reply;
    }
}

}  // namespace ember::testing
