// A TCP forwarder on 127.0.0.1 that delays what it forwards by half a round trip each way: a store
// "1 ms away" for a benchmark, on hosts whose kernel has no netem. Each direction of a connection
// is a thread that reads what has come and writes it on once half the round trip has passed since
// it read it, so a request and its answer take one round trip more than without it, and a long
// answer arrives a window at a time, as over a real path. The bytes go through a pipe by splice(),
// never through the forwarder's memory: on a real path no process of this host copies them, and
// here two copies of every byte took CPU from what the benchmark measures.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/support/ember_process.h"

namespace ember::perf {

class DelayProxy {
  public:
    DelayProxy(int upstream_port, std::chrono::microseconds round_trip)
        : upstream_(upstream_port), half_(round_trip / 2) {
        listener_ = ember::testing::listen_on_loopback(64, port_);
        acceptor_ = std::jthread([this] { accept_loop(); });
    }
    ~DelayProxy() {
        stopping_ = true;
        ::shutdown(listener_.get(), SHUT_RDWR);
        listener_.reset();
        acceptor_.join();
        std::lock_guard lock(mutex_);
        for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
        pumps_.clear();  // joins
        for (int fd : fds_) ::close(fd);
    }
    DelayProxy(const DelayProxy&) = delete;
    DelayProxy& operator=(const DelayProxy&) = delete;

    int port() const { return port_; }

  private:
    static sockaddr_in loopback(int port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<uint16_t>(port));
        return a;
    }
    void accept_loop() {
        while (!stopping_) {
            const int client = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0) {
                if (stopping_) return;
                continue;
            }
            const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            const sockaddr_in a = loopback(upstream_);
            if (::connect(server, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
                ::close(client);
                ::close(server);
                continue;
            }
            std::lock_guard lock(mutex_);
            fds_.insert(fds_.end(), {client, server});
            pumps_.emplace_back([this, client, server] { pump(client, server); });
            pumps_.emplace_back([this, client, server] { pump(server, client); });
        }
    }
    void pump(int from, int to) {
        int ends[2];
        if (::pipe2(ends, O_CLOEXEC) != 0) return;
        const UniqueFd out(ends[0]), in(ends[1]);
        constexpr size_t kHeld = 1 << 20;
        ::fcntl(in.get(), F_SETPIPE_SZ, kHeld);
        for (;;) {
            const ssize_t n = ::splice(from, nullptr, in.get(), nullptr, kHeld, SPLICE_F_MOVE);
            if (n <= 0) break;
            std::this_thread::sleep_until(std::chrono::steady_clock::now() + half_);
            for (ssize_t left = n; left > 0;) {
                // A peer that has gone (a fetcher that gave up on a try) is an error here; the
                // benchmark ignores SIGPIPE.
                const ssize_t w = ::splice(out.get(), nullptr, to, nullptr,
                                           static_cast<size_t>(left), SPLICE_F_MOVE);
                if (w <= 0) return;
                left -= w;
            }
        }
        ::shutdown(to, SHUT_WR);
    }

    int upstream_;
    std::chrono::microseconds half_;
    UniqueFd listener_;
    int port_ = 0;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::vector<int> fds_;
    std::list<std::jthread> pumps_;
    std::jthread acceptor_;
};

}  // namespace ember::perf
