// The client against servers that misbehave: each call ends, within its bound, with an error that
// says what went wrong, whatever the server does. A failsafe (ctest's timeout) catches a call
// that never ends; no test measures how long one took.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <future>
#include <string>
#include <thread>

#include "api/client/client.h"
#include "api/client/watchdog.h"
#include "core/base/unique_fd.h"
#include "tests/support/ember_process.h"

namespace ember {
namespace {

using testing::TempDir;

// Serves each connection on its own thread with `behave`, until the object goes.
class HostileServer {
  public:
    explicit HostileServer(std::function<void(int fd)> behave) : behave_(std::move(behave)) {
        path_ = dir_.path() + "/api.sock";
        listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strcpy(addr.sun_path, path_.c_str());
        EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        EXPECT_EQ(::listen(listener_.get(), 8), 0);
        acceptor_ = std::jthread([this] {
            for (;;) {
                const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
                if (fd < 0) return;
                connections_.emplace_back([this, fd] {
                    UniqueFd owned(fd);
                    behave_(owned.get());
                });
            }
        });
    }
    ~HostileServer() {
        ::shutdown(listener_.get(), SHUT_RDWR);
        acceptor_.join();
    }
    client::Client client(std::chrono::milliseconds timeout = std::chrono::milliseconds(500),
                          size_t max_answer = 1 << 20) {
        client::ClientOptions o;
        o.socket_path = path_;
        o.timeout = timeout;
        o.snapshot_timeout = timeout;
        o.max_answer_bytes = max_answer;
        return client::Client(std::move(o));
    }

  private:
    TempDir dir_;
    std::string path_;
    UniqueFd listener_;
    std::function<void(int)> behave_;
    std::vector<std::jthread> connections_;  // joined after the acceptor, as they are destroyed
    std::jthread acceptor_;
};

enum class Body { Read, Left };

// Reads the request, its body included unless it is Left, so that what the server sends next is an
// answer to it (a server that closed with the body unread would fail the client's write of it
// instead, which is what Left is for).
void read_request(int fd, Body what = Body::Read) {
    std::string seen;
    char buf[4096];
    size_t end = std::string::npos;
    size_t body = 0;
    while (end == std::string::npos || (what == Body::Read && seen.size() < end + 4 + body)) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        seen.append(buf, static_cast<size_t>(n));
        if (end == std::string::npos && (end = seen.find("\r\n\r\n")) != std::string::npos) {
            const size_t at = seen.find("Content-Length: ");
            if (at != std::string::npos && at < end) body = std::stoul(seen.substr(at + 16));
        }
    }
}

bool send_all(int fd, const std::string& bytes) {
    return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
}

// Until the client has gone: its end closed or shut down.
void wait_for_client_to_go(int fd) {
    pollfd p{.fd = fd, .events = POLLRDHUP, .revents = 0};
    ::poll(&p, 1, -1);
}

// Answers a request with a 400 as soon as its head has come, and closes while the client is still
// writing a body far larger than the socket holds: the client's next write fails with EPIPE, which
// raises SIGPIPE. (cpp-httplib does write again, because the 400 is there to read: it peeks
// before each write.)
void answer_the_head_and_close(int fd) {
    read_request(fd, Body::Left);
    send_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}");
}

void expect_error(const Result<InstanceInfo>& r, const std::string& needle) {
    ASSERT_FALSE(r) << "the call succeeded";
    EXPECT_NE(r.error().message.find("GET /: "), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(needle), std::string::npos)
        << "expected '" << needle << "' in: " << r.error().message;
}

TEST(ClientHostileServer, GarbageIsAnErrorNotAnAnswer) {
    HostileServer server([](int fd) {
        read_request(fd);
        send_all(fd, "SSH-2.0-OpenSSH_9.2\r\nnonsense\r\n\r\n");
    });
    auto c = server.client();
    expect_error(c.describe_instance(), "not HTTP");
}

TEST(ClientHostileServer, AHundredMegabyteAnswerIsCutAtTheBound) {
    HostileServer server([](int fd) {
        read_request(fd);
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n");
        const std::string chunk(1 << 16, '{');
        for (size_t sent = 0; sent < (100u << 20) && send_all(fd, chunk); sent += chunk.size()) {
        }
    });
    auto c = server.client(std::chrono::milliseconds(30'000), 64 * 1024);
    expect_error(c.describe_instance(), "longer than 65536 bytes");
}

TEST(ClientHostileServer, AnAnswerOneByteAtATimeEndsAtTheCallsBound) {
    HostileServer server([](int fd) {
        read_request(fd);
        // Each byte well inside cpp-httplib's own read timeout, so only the whole call's bound
        // can end it.
        const std::string head = "HTTP/1.1 200 OK\r\nX-Slow: ";
        for (size_t i = 0;; ++i) {
            if (!send_all(fd, i < head.size() ? head.substr(i, 1) : std::string("a"))) return;
            pollfd p{.fd = fd, .events = POLLRDHUP, .revents = 0};
            if (::poll(&p, 1, 50) != 0) return;
        }
    });
    auto c = server.client(std::chrono::milliseconds(400));
    expect_error(c.describe_instance(), "no whole answer within 400 ms");
}

// (A Unix socket has no reset: the server's end closes.)
TEST(ClientHostileServer, AConnectionThatEndsMidAnswerIsAnError) {
    HostileServer server([](int fd) {
        read_request(fd);
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"id\":");
    });
    auto c = server.client();
    expect_error(c.describe_instance(), "could not be read");
}

TEST(ClientHostileServer, AServerThatNeverAnswersEndsAtTheCallsBound) {
    HostileServer server([](int fd) {
        read_request(fd);
        wait_for_client_to_go(fd);
    });
    auto c = server.client(std::chrono::milliseconds(300));
    expect_error(c.describe_instance(), "within 300 ms");
    // The next call gets a connection of its own, and its own bound.
    expect_error(c.describe_instance(), "within 300 ms");
}

TEST(ClientHostileServer, AnAnswerThatIsNotTheExpectedJsonNamesTheCall) {
    HostileServer server([](int fd) {
        read_request(fd);
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"id\": 42 }");
    });
    auto c = server.client();
    expect_error(c.describe_instance(), "the answer");
}

TEST(ClientHostileServer, AFaultMessageComesBackNamingTheCall) {
    HostileServer server([](int fd) {
        read_request(fd);
        const std::string body = R"({"fault_message":"The requested operation is not supported."})";
        send_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\n\r\n" + body);
    });
    auto c = server.client();
    auto r = c.pause();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "PATCH /vm: The requested operation is not supported.");
}

TEST(ClientHostileServer, NoServerIsAnErrorNamingTheSocket) {
    TempDir dir;
    client::ClientOptions o;
    o.socket_path = dir.path() + "/nobody.sock";
    client::Client c(std::move(o));
    auto r = c.version();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("GET /version: cannot connect to " + dir.path()),
              std::string::npos)
        << r.error().message;
}

TEST(ClientWatchdog, AWatchPastItsDeadlineRunsItsCallback) {
    client::Watchdog dog;
    std::promise<void> ran;
    auto watch = dog.watch(client::Watchdog::Clock::now(), [&ran, once = true]() mutable {
        if (std::exchange(once, false)) ran.set_value();
    });
    ran.get_future().wait();
    EXPECT_TRUE(watch.fired());
}

TEST(ClientWatchdog, AnEndedWatchNeverRuns) {
    client::Watchdog dog;
    std::atomic<bool> ran = false;
    {
        // Due in 200 ms, ended at once: the margin is the host's, where unit tests run.
        auto watch = dog.watch(client::Watchdog::Clock::now() + std::chrono::milliseconds(200),
                               [&ran] { ran = true; });
    }
    // A later watch that fires proves the thread went past the ended one's deadline.
    std::promise<void> later;
    auto watch = dog.watch(client::Watchdog::Clock::now() + std::chrono::milliseconds(400),
                           [&later, once = true]() mutable {
                               if (std::exchange(once, false)) later.set_value();
                           });
    later.get_future().wait();
    EXPECT_FALSE(ran);
}

TEST(ClientHostileServer, ASigpipeFromAServerThatHungUpEarlyDoesNotKillTheCaller) {
    HostileServer server(answer_the_head_and_close);
    // SIGPIPE at its default: it would end this test's process.
    ::signal(SIGPIPE, SIG_DFL);
    auto c = server.client(std::chrono::milliseconds(5000));
    const std::string body(8 << 20, ' ');  // far more than the socket's buffer holds
    auto r = c.call("PUT", "/machine-config", body, std::chrono::milliseconds(5000));
    ASSERT_FALSE(r) << "the body was written whole";
    EXPECT_NE(r.error().message.find("could not be sent"), std::string::npos) << r.error().message;
    sigset_t pending;
    sigpending(&pending);
    EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

// An agent that blocks SIGPIPE on its own thread keeps its mask, and keeps a SIGPIPE of its own
// that was pending before the call; one the call raised is taken back.
TEST(ClientHostileServer, AThreadThatBlocksSigpipeKeepsItsMaskAndItsOwnPendingOne) {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    // What the test leaves to the tests after it: no SIGPIPE pending, and this thread's mask.
    struct MaskRestored {
        sigset_t pipe{}, before{};
        ~MaskRestored() {
            const timespec now{};
            while (sigtimedwait(&pipe, nullptr, &now) == SIGPIPE) {
            }
            pthread_sigmask(SIG_SETMASK, &before, nullptr);
        }
    } restored{pipe, {}};
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &pipe, &restored.before), 0);
    for (const bool own_pending : {false, true}) {
        SCOPED_TRACE(own_pending ? "the agent's SIGPIPE pending" : "none pending");
        HostileServer server(answer_the_head_and_close);
        if (own_pending) {
            ASSERT_EQ(pthread_kill(pthread_self(), SIGPIPE), 0);
        }
        auto c = server.client(std::chrono::milliseconds(5000));
        const std::string body(8 << 20, ' ');
        auto r = c.call("PUT", "/machine-config", body, std::chrono::milliseconds(5000));
        ASSERT_FALSE(r) << "the body was written whole";
        EXPECT_NE(r.error().message.find("could not be sent"), std::string::npos)
            << r.error().message;
        sigset_t mask, pending;
        ASSERT_EQ(pthread_sigmask(SIG_BLOCK, nullptr, &mask), 0);
        EXPECT_TRUE(sigismember(&mask, SIGPIPE));
        sigpending(&pending);
        EXPECT_EQ(sigismember(&pending, SIGPIPE) == 1, own_pending);
        const timespec now{};
        while (sigtimedwait(&pipe, nullptr, &now) == SIGPIPE) {
        }
    }
}

}  // namespace
}  // namespace ember
