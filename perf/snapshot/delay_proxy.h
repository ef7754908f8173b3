// A TCP forwarder on 127.0.0.1 that delays what it forwards by half a round trip each way: a store
// "1 ms away" for a benchmark, on hosts whose kernel has no netem. Each direction of a connection
// is a delay line: one thread reads what has come and stamps it with when it arrives at the other
// end, another writes each piece at its time. A request and its answer take one round trip more
// than without it, however many pieces the answer comes in, and a long answer arrives a window at
// a time, as over a real path. Given a rate, each direction is also a link of that many bits a
// second that every connection shares: what is read leaves once the link has sent what came
// before it.
//
// Both sockets have TCP_NODELAY: the forwarder writes each piece as it is due, and Nagle's
// algorithm would hold a short piece back until the peer's delayed ACK, adding tens of ms that no
// real path adds.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <memory>
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
        // Each line's threads end once their sockets fail (a writer's failure releases its reader).
        for (const auto& c : connections_) {
            ::shutdown(c->client.get(), SHUT_RDWR);
            ::shutdown(c->server.get(), SHUT_RDWR);
        }
        connections_.clear();  // joins
    }
    DelayProxy(const DelayProxy&) = delete;
    DelayProxy& operator=(const DelayProxy&) = delete;

    int port() const { return port_; }

  private:
    // What a line holds in flight at most: a reader waits while this much is read and not yet
    // written, as a sender waits for a window.
    static constexpr size_t kWindow = 4 << 20;

    struct Link {
        std::mutex mutex;
        std::chrono::steady_clock::time_point free_at;
    };
    struct Piece {
        std::chrono::steady_clock::time_point due;
        std::vector<char> bytes;
    };
    struct Line {
        std::mutex mutex;
        std::condition_variable changed;
        std::deque<Piece> pieces;
        size_t held = 0;
        bool ended = false;   // the reader has read its last piece
        bool broken = false;  // the writer could not write: the reader stops
    };
    struct Connection {
        UniqueFd client, server;
        Line up, down;
        std::jthread threads[4];  // last: joined before the sockets close
    };

    static sockaddr_in loopback(int port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<uint16_t>(port));
        return a;
    }
    static void no_delay(int fd) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    void accept_loop() {
        while (!stopping_) {
            UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!client.valid()) {
                if (stopping_) return;
                continue;
            }
            UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            const sockaddr_in a = loopback(upstream_);
            if (::connect(server.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
                continue;
            no_delay(client.get());
            no_delay(server.get());
            auto c = std::make_unique<Connection>();
            c->client = std::move(client);
            c->server = std::move(server);
            Connection& k = *c;
            k.threads[0] = std::jthread([this, &k] { read_into(k.client.get(), k.up, up_); });
            k.threads[1] = std::jthread([&k] { write_from(k.up, k.server.get(), k.client.get()); });
            k.threads[2] = std::jthread([this, &k] { read_into(k.server.get(), k.down, down_); });
            k.threads[3] =
                std::jthread([&k] { write_from(k.down, k.client.get(), k.server.get()); });
            std::lock_guard lock(mutex_);
            connections_.push_back(std::move(c));
        }
    }
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
    void read_into(int from, Line& line, Link& link) {
        std::vector<char> buffer(256 << 10);
        for (;;) {
            {
                std::unique_lock lock(line.mutex);
                line.changed.wait(lock, [&] { return line.held < kWindow || line.broken; });
                if (line.broken) break;
            }
            const ssize_t n = ::read(from, buffer.data(), buffer.size());
            if (n <= 0) break;
            Piece piece{arrival(link, n), {buffer.begin(), buffer.begin() + n}};
            std::lock_guard lock(line.mutex);
            line.held += piece.bytes.size();
            line.pieces.push_back(std::move(piece));
            line.changed.notify_all();
        }
        std::lock_guard lock(line.mutex);
        line.ended = true;
        line.changed.notify_all();
    }
    // `from`: the socket the line's reader reads, shut when this end cannot write, so that the
    // reader stops rather than wait on a window that no longer drains.
    static void write_from(Line& line, int to, int from) {
        for (;;) {
            Piece piece;
            {
                std::unique_lock lock(line.mutex);
                line.changed.wait(lock, [&] { return !line.pieces.empty() || line.ended; });
                if (line.pieces.empty()) break;
                piece = std::move(line.pieces.front());
                line.pieces.pop_front();
            }
            std::this_thread::sleep_until(piece.due);
            for (size_t done = 0; done < piece.bytes.size();) {
                // MSG_NOSIGNAL: a peer that has gone (a fetcher that gave up on a try) is an
                // error here, where write()'s SIGPIPE ended the whole benchmark.
                const ssize_t w =
                    ::send(to, piece.bytes.data() + done, piece.bytes.size() - done, MSG_NOSIGNAL);
                if (w <= 0) {
                    std::lock_guard lock(line.mutex);
                    line.broken = true;
                    line.changed.notify_all();
                    ::shutdown(from, SHUT_RD);
                    return;
                }
                done += static_cast<size_t>(w);
            }
            std::lock_guard lock(line.mutex);
            line.held -= piece.bytes.size();
            line.changed.notify_all();
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
    std::list<std::unique_ptr<Connection>> connections_;
    std::jthread acceptor_;
};

}  // namespace ember::perf
