// The API's HTTP connection tells its handler when an answer has gone out whole (answered()),
// which the Controller waits for before settling a VM just started, and not when it could not go
// out.
#include "api/server/http_connection.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace ember::api {
namespace {

struct CountingHandler : RequestHandler {
    HttpResponse handle(const HttpRequest&) override {
        ++handled;
        return {};
    }
    void answered() override { ++answers; }
    int handled = 0;
    int answers = 0;
};

struct Pair {
    Pair() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
        server = UniqueFd(fds[0]);
        client = UniqueFd(fds[1]);
    }
    void send(const std::string& bytes) const {
        ASSERT_EQ(::write(client.get(), bytes.data(), bytes.size()),
                  static_cast<ssize_t>(bytes.size()));
    }
    std::string received() const {
        char buf[4096];
        const ssize_t n = ::read(client.get(), buf, sizeof buf);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }
    UniqueFd server, client;
};

constexpr char kGet[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

TEST(HttpConnection, TellsItsHandlerWhenItsAnswersHaveGoneOut) {
    Pair p;
    CountingHandler handler;
    const auto now = HttpConnection::Clock::now();
    HttpConnection conn(std::move(p.server), handler, RequestLimits{}, now);
    p.send(kGet);
    ASSERT_TRUE(conn.on_readable(now));
    EXPECT_EQ(handler.handled, 1);
    EXPECT_EQ(handler.answers, 1);
    EXPECT_EQ(p.received().rfind("HTTP/1.1 204", 0), 0u);
    // Two pipelined requests, answered in one write: told once more.
    p.send(std::string(kGet) + kGet);
    ASSERT_TRUE(conn.on_readable(now));
    EXPECT_EQ(handler.handled, 3);
    EXPECT_EQ(handler.answers, 2);
}

TEST(HttpConnection, DoesNotTellItsHandlerOfAnAnswerThatCouldNotGoOut) {
    Pair p;
    CountingHandler handler;
    const auto now = HttpConnection::Clock::now();
    HttpConnection conn(std::move(p.server), handler, RequestLimits{}, now);
    p.send(kGet);
    p.client.reset();  // gone before its answer
    EXPECT_FALSE(conn.on_readable(now));
    EXPECT_EQ(handler.handled, 1);
    EXPECT_EQ(handler.answers, 0);
}

}  // namespace
}  // namespace ember::api
