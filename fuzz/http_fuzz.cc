// Bytes on the API socket, as the server reads them: request lines, headers, bodies and
// Content-Length in every malformed shape, several requests to a connection, then routing through
// the real Router to a VMM that accepts whatever it is asked. Whatever comes in, what goes out is
// a sequence of whole HTTP/1.1 answers, each with Firecracker's status codes and a Content-Length
// that matches its body, and each 400 carrying a fault_message (with a 100 Continue before an
// answer where the client asked for one).
//
// cpp-httplib's own parsing is Debian's shared library, built without coverage: the fuzzer is
// guided by ember's side (the pre-routing checks, the router and its JSON), and the sanitizers
// still see every byte cpp-httplib hands over.
#include <cstring>
#include <string>
#include <string_view>

#include "api/http/request_server.h"
#include "api/routes/router.h"
#include "fuzz/support/require.h"
#include "vmm/base/log.h"

using namespace ember;
using fuzz::require;

namespace {

class InputStream : public httplib::Stream {
  public:
    explicit InputStream(std::string_view in) : in_(in) {}
    bool is_readable() const override { return pos_ < in_.size(); }
    bool is_writable() const override { return true; }
    ssize_t read(char* ptr, size_t size) override {
        const size_t n = std::min(size, in_.size() - pos_);
        if (n) std::memcpy(ptr, in_.data() + pos_, n);
        pos_ += n;
        return static_cast<ssize_t>(n);
    }
    ssize_t write(const char* ptr, size_t size) override {
        out.append(ptr, size);
        return static_cast<ssize_t>(size);
    }
    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        ip = "unix";
        port = 0;
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        ip = "unix";
        port = 0;
    }
    socket_t socket() const override { return -1; }

    bool exhausted() const { return pos_ >= in_.size(); }
    std::string out;

  private:
    std::string_view in_;
    size_t pos_ = 0;
};

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static AcceptingVmm vmm;
    static api::Router router(vmm);
    static api::RequestServer server = [] {
        log::set_level(log::Level::Off);
        return api::RequestServer(router, 51200);
    }();
    InputStream stream(std::string_view(reinterpret_cast<const char*>(data), size));
    size_t requests = 0;
    while (!stream.exhausted() && requests < 64) {
        ++requests;
        if (!server.serve_one(stream)) break;
    }
    const bool head_asked =
        std::string_view(reinterpret_cast<const char*>(data), size).find("HEAD") !=
        std::string_view::npos;
    require(require_whole_answers(stream.out, head_asked) <= requests,
            "at most one answer per request");
    return 0;
}
