#include "tests/support/uds_http.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/base/folder_watch.h"

namespace ember::testing {

constexpr int kReplyTimeoutMs = static_cast<int>(std::chrono::milliseconds(kFailsafe).count());

Result<UdsHttpClient> UdsHttpClient::connect(const std::string& path, int timeout_ms) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    // ember links its socket into place once it listens: woken by that, not by a timer.
    FolderWatch watch = FolderWatch::of(path);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd.valid()) return fail_errno("socket");
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
            return UdsHttpClient(std::move(fd), path);
        const int err = errno;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return fail_errno("connect " + path, err);
        // A stale socket there (refused) makes no event: asked again within 1 ms.
        watch.wait(std::min(left, std::chrono::milliseconds(1)));
    }
}

Result<void> UdsHttpClient::send_raw(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n <= 0) return fail_errno("send");
        done += static_cast<size_t>(n);
    }
    return {};
}

Result<HttpReply> UdsHttpClient::request(const std::string& method, const std::string& path,
                                         const std::string& body) {
    std::string req =
        method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n";
    if (!body.empty() || method == "PUT" || method == "PATCH")
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
    req += "\r\n" + body;
    EMBER_TRY(reconnect_if_closed());
    EMBER_TRY(send_raw(req));
    return read_reply();
}

// ember closes a keep-alive connection after a minute idle, which a test that does slow work
// between two requests (reading a 32 MiB file under ASan in an emulated VM) can reach. Like any
// HTTP client, this one then opens a new connection; the server having closed is seen before the
// request is sent, so no request is ever sent twice.
Result<void> UdsHttpClient::reconnect_if_closed() {
    if (!buffered_.empty()) return {};
    char byte;
    if (::recv(fd_.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0) return {};
    auto fresh = connect(path_);
    EMBER_TRY(fresh);
    fd_ = std::move(fresh->fd_);
    return {};
}

Result<HttpReply> UdsHttpClient::read_reply() {
    // Read until the headers are complete and then the body's Content-Length.
    std::string& in = buffered_;
    size_t header_end;
    while ((header_end = in.find("\r\n\r\n")) == std::string::npos) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, kReplyTimeoutMs) <= 0) return fail("timed out waiting for a response");
        char buf[4096];
        ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        if (n <= 0) return fail("connection closed before a response");
        in.append(buf, static_cast<size_t>(n));
    }
    HttpReply reply;
    reply.status = std::stoi(in.substr(in.find(' ') + 1, 3));
    size_t length = 0;
    std::string headers = in.substr(0, header_end);
    for (auto& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (auto pos = headers.find("content-length:"); pos != std::string::npos)
        length = std::stoul(headers.substr(pos + 15));
    while (in.size() < header_end + 4 + length) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, kReplyTimeoutMs) <= 0) return fail("timed out waiting for a body");
        char buf[4096];
        ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        if (n <= 0) return fail("connection closed inside a body");
        in.append(buf, static_cast<size_t>(n));
    }
    reply.headers = headers;
    reply.body = in.substr(header_end + 4, length);
    in.erase(0, header_end + 4 + length);
    return reply;
}

}  // namespace ember::testing
