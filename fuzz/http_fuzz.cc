// Bytes on the API socket, as the server reads them: request lines, headers, bodies framed by
// Content-Length or chunked, in every malformed shape, several requests to a connection and in
// pieces, then routing through the real Router to a VMM that accepts whatever it is asked. The
// bytes go through a real HttpConnection over a socket pair. Whatever comes in, what goes out is a
// sequence of whole HTTP/1.1 answers, each with Firecracker's status codes and a Content-Length
// that matches its body, and each 400 carrying a fault_message (with a 100 Continue before an
// answer where the client asked for one).
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <string_view>

#include "api/server/http_connection.h"
#include "api/server/router.h"
#include "core/base/log.h"
#include "fuzz/support/require.h"

using namespace ember;
using fuzz::require;

namespace {

class AcceptingVmm : public ActionSink {
  public:
    Outcome submit(Action) override { return {}; }
    VmConfig config() const override { return {}; }
    VmState state() const override { return VmState::NotStarted; }
    const std::string& instance_id() const override { return id_; }

  private:
    std::string id_ = "fuzz";
};

// Checks the answers in `out`, one after another; returns how many there were. An answer to a
// HEAD request has a Content-Length but, as HTTP requires, no body.
size_t require_whole_answers(std::string_view out, bool head_asked) {
    size_t answers = 0;
    while (!out.empty()) {
        require(out.starts_with("HTTP/1.1 ") && out.size() >= 12,
                "an answer starts with its status line");
        const std::string_view status = out.substr(9, 3);
        const size_t head_end = out.find("\r\n\r\n");
        require(head_end != std::string_view::npos, "an answer's head ends");
        // "Expect: 100-continue" (curl sends it before a large body) gets the interim answer.
        if (status == "100") {
            out.remove_prefix(head_end + 4);
            continue;
        }
        require(status == "200" || status == "204" || status == "400",
                "every status is one Firecracker's API uses");
        const std::string_view head = out.substr(0, head_end + 2);
        size_t length = 0;
        if (const size_t at = head.find("Content-Length: "); at != std::string_view::npos)
            length = std::stoul(std::string(head.substr(at + 16, head.find("\r\n", at) - at - 16)));
        const std::string_view rest = out.substr(head_end + 4);
        const bool bodiless = head_asked && (rest.empty() || rest.starts_with("HTTP/1.1 "));
        if (bodiless) length = 0;
        require(out.size() >= head_end + 4 + length, "an answer's body is as long as it says");
        const std::string_view body = out.substr(head_end + 4, length);
        if (status == "204") require(body.empty(), "a 204 has no body");
        if (status == "400" && !bodiless)
            require(body.starts_with("{\"fault_message\":"), "a 400 says why, as Firecracker does");
        out.remove_prefix(head_end + 4 + length);
        ++answers;
    }
    return answers;
}

std::string drain(int fd) {
    std::string out;
    char buffer[4096];
    ssize_t n;
    while ((n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT)) > 0)
        out.append(buffer, static_cast<size_t>(n));
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static AcceptingVmm vmm;
    static api::Router router = [] {
        log::set_level(log::Level::Off);
        return api::Router(vmm);
    }();
    if (size > 64 * 1024) return 0;  // within one socket buffer: no writer thread needed
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return 0;
    UniqueFd client(sv[1]);
    const auto now = api::HttpConnection::Clock::now();
    api::HttpConnection connection(UniqueFd(sv[0]), router, api::RequestLimits{}, now);
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    // The first byte picks how the rest arrives: in pieces of 1 to 256 bytes.
    const size_t piece = size ? static_cast<size_t>(data[0]) + 1 : 1;
    std::string out;
    bool open = true;
    for (size_t at = 0; at < in.size() && open; at += piece) {
        const std::string_view part = in.substr(at, piece);
        require(::send(client.get(), part.data(), part.size(), MSG_NOSIGNAL) ==
                    static_cast<ssize_t>(part.size()),
                "the socket takes the piece");
        open = connection.on_readable(now) && connection.on_writable(now);
        out += drain(client.get());
    }
    if (open) {
        ::shutdown(client.get(), SHUT_WR);
        (void)connection.on_readable(now);
        out += drain(client.get());
    }
    const bool head_asked = in.find("HEAD") != std::string_view::npos;
    // A head ends at an empty line, whether its lines end in CRLF or a bare LF (RFC 9112 2.2).
    const size_t heads = [&] {
        size_t n = 0;
        for (size_t at = in.find('\n'); at != std::string_view::npos; at = in.find('\n', at + 1))
            if (in.substr(at + 1).starts_with('\n') || in.substr(at + 1).starts_with("\r\n")) ++n;
        return n;
    }();
    require(require_whole_answers(out, head_asked) <= heads + 1,
            "at most one answer per request head");
    return 0;
}
