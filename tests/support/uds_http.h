// A small HTTP/1.1 client over a Unix socket for the API tests: keep-alive, Content-Length
// bodies, and raw access for the tests that misbehave on purpose.
#pragma once

#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"
#include "tests/support/ember_process.h"

namespace ember::testing {

struct HttpReply {
    int status = 0;
    std::string body;
    std::string headers;  // the status line and headers, lower-cased
};

class UdsHttpClient {
  public:
    // Retries for up to timeout_ms while the server is starting.
    static Result<UdsHttpClient> connect(
        const std::string& path,
        int timeout_ms = static_cast<int>(std::chrono::milliseconds(kFailsafe).count()));

    Result<HttpReply> request(const std::string& method, const std::string& path,
                              const std::string& body = "");
    // Sends bytes as they are.
    Result<void> send_raw(const std::string& bytes);
    // The next response on the connection.
    Result<HttpReply> read_reply();
    int fd() const { return fd_.get(); }

  private:
    UdsHttpClient(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
    // A new connection in place of one the server closed while it was idle.
    Result<void> reconnect_if_closed();

    UniqueFd fd_;
    std::string path_;
    std::string buffered_;
};

}  // namespace ember::testing
