// ember-store-fetch's client (api/client/store/store_fetch.h) against a hostile server: an answer
// is bounded as a whole, its headers with it, not only its body.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/time.h>

#include <atomic>
#include <string>
#include <thread>

#include "api/client/store/store_fetch.h"
#include "tests/support/ember_process.h"

namespace ember::client {
namespace {

// A server on 127.0.0.1 that answers its first request with a status line, then header lines of
// 1 KiB without end until its peer goes, counting what it got out.
class EndlessHeaders {
  public:
    EndlessHeaders() : listener_(testing::listen_on_loopback(4, port_)) {
        thread_ = std::thread([this] { serve(); });
    }
    ~EndlessHeaders() {
        ::shutdown(listener_.get(), SHUT_RDWR);  // ends a wait in accept()
        thread_.join();
    }
    EndlessHeaders(const EndlessHeaders&) = delete;
    EndlessHeaders& operator=(const EndlessHeaders&) = delete;

    int port() const { return port_; }
    uint64_t sent() const { return sent_.load(); }

  private:
    void serve() {
        const int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        // Once the fetcher stops reading, a send waits at most this long, then the server ends.
        const timeval wait{2, 0};
        ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof wait);
        char request[4096];
        (void)!::read(c, request, sizeof request);
        const std::string status = "HTTP/1.1 200 OK\r\n";
        const std::string line = "X-Padding: " + std::string(1010, 'a') + "\r\n";
        ssize_t n = ::send(c, status.data(), status.size(), MSG_NOSIGNAL);
        while (n > 0) {
            n = ::send(c, line.data(), line.size(), MSG_NOSIGNAL);
            if (n > 0) sent_ += static_cast<uint64_t>(n);
        }
        ::close(c);
    }

    int port_ = 0;
    UniqueFd listener_;
    std::atomic<uint64_t> sent_{0};
    std::thread thread_;
};

// cpp-httplib bounds a header line (8 KiB), not how many: each one read is kept, so the answer's
// bytes as a whole are what bounds the fetcher's memory. Without that bound the server here got
// 1.3 GB out (and the fetcher kept it) before the try's 15 s ran out.
TEST(StoreFetch, AServerThatSendsEndlessHeadersIsCutOffAtTheAnswersBound) {
    EndlessHeaders server;
    FetchOptions options;
    options.tries = 1;
    auto fetcher = StoreFetcher::open("http://127.0.0.1:" + std::to_string(server.port()), options);
    ASSERT_TRUE(fetcher) << fetcher.error().message;
    auto got = (*fetcher)->get("chunks/x", 64 << 10);
    ASSERT_FALSE(got);
    EXPECT_NE(got.error().message.find("headers and all"), std::string::npos)
        << got.error().message;
    // The bound, what the kernel's buffers held, and what came between two of the watchdog's
    // looks (every 20 ms), on a host as slow and busy as ours get.
    EXPECT_LT(server.sent(), uint64_t{256} << 20);
}

}  // namespace
}  // namespace ember::client
