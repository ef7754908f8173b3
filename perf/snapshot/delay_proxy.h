// A TCP forwarder on 127.0.0.1 that delays what it forwards by half a round trip each way: a store
// "1 ms away" for a benchmark, on hosts whose kernel has no netem. Each direction of a connection
// is a thread that reads what has come and writes it on once half the round trip has passed since
// it read it, so a request and its answer take one round trip more than without it, and a long
// answer arrives a window at a time, as over a real path. Given a rate, each direction is also a
// link of that many bits a second that every connection shares: what is read leaves once the link
// has sent what came before it.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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
    // `bits_per_second`: 0 for a link of no limit.
    DelayProxy(int upstream_port, std::chrono::microseconds round_trip,
               uint64_t bits_per_second = 0)
        : upstream_(upstream_port), half_(round_trip / 2), bits_per_second_(bits_per_second) {
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
            pumps_.emplace_back([this, client, server] { pump(client, server, up_); });
            pumps_.emplace_back([this, client, server] { pump(server, client, down_); });
        }
    }
    struct Link {
        std::mutex mutex;
        std::chrono::steady_clock::time_point free_at;
    };
    // When `bytes` read now have crossed the link: half a round trip, and the link's time to send
    // them after what it is sending.
    std::chrono::steady_clock::time_point arrival(Link& link, ssize_t bytes) {
        const auto now = std::chrono::steady_clock::now();
        if (bits_per_second_ == 0) return now + half_;
        std::lock_guard lock(link.mutex);
        link.free_at = std::max(link.free_at, now) +
                       std::chrono::nanoseconds(static_cast<uint64_t>(bytes) * 8 * 1000000000 /
                                                bits_per_second_);
        return link.free_at + half_;
    }
    void pump(int from, int to, Link& link) {
        std::vector<char> buffer(1 << 20);
        for (;;) {
            const ssize_t n = ::read(from, buffer.data(), buffer.size());
            if (n <= 0) break;
            std::this_thread::sleep_until(arrival(link, n));
            for (ssize_t done = 0; done < n;) {
                // MSG_NOSIGNAL: a peer that has gone (a fetcher that gave up on a try) is an
                // error here, where write()'s SIGPIPE ended the whole benchmark.
                const ssize_t w =
                    ::send(to, buffer.data() + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
                if (w <= 0) return;
                done += w;
            }
        }
        ::shutdown(to, SHUT_WR);
    }

    int upstream_;
    std::chrono::microseconds half_;
    uint64_t bits_per_second_;
    Link up_, down_;
    UniqueFd listener_;
    int port_ = 0;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::vector<int> fds_;
    std::list<std::jthread> pumps_;
    std::jthread acceptor_;
};

}  // namespace ember::perf
