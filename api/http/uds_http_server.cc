// libember_api_http.so: HTTP/1.1 on the API's Unix socket, served by one thread with an event loop
// over every connection (as Firecracker's API server is one thread). No client can hold up the
// others: sockets are non-blocking, a whole request must arrive within its deadline, and when
// connections run out (our cap, or the process's file limit) the oldest idle one gives way to the
// newcomer.
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "api/http/http_connection.h"
#include "api/http/http_types.h"
#include "core/base/unique_fd.h"

namespace ember::api {
namespace {

using Clock = HttpConnection::Clock;

constexpr size_t kMaxConnections = 512;
// So many connections at once are a crowd whose memory is worth giving back when it leaves.
constexpr size_t kCrowd = 64;
// After an accept error nothing else cures (the host's file table full), accepting pauses this
// long instead of spinning on a listening socket that stays readable.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
constexpr auto kWarningInterval = std::chrono::seconds(10);

class UdsHttpServer : public HttpServer {
  public:
    explicit UdsHttpServer(const HttpServerOptions& options)
        : options_(options), listen_fd_(options.listen_fd) {}

    ~UdsHttpServer() override {
        if (thread_.joinable()) {
            const uint64_t one = 1;
            (void)!::write(stop_fd_.get(), &one, sizeof one);
            thread_.join();
        }
        ::unlink(options_.socket_path.c_str());
    }

    bool start(std::string& error) {
        // Accepted until EAGAIN at each wake-up: the loop must never block in accept4.
        const int flags = ::fcntl(listen_fd_.get(), F_GETFL);
        if (flags < 0 || ::fcntl(listen_fd_.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
            error = std::string("the API socket: ") + std::strerror(errno);
            return false;
        }
        epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
        stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!epoll_fd_.valid() || !stop_fd_.valid() || !watch(stop_fd_.get(), EPOLLIN) ||
            !watch(listen_fd_.get(), EPOLLIN)) {
            error = std::string("the API server's event loop: ") + std::strerror(errno);
            return false;
        }
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::system_error& e) {
            error = std::string("cannot start the API server's thread: ") + e.what();
            return false;
        }
        return true;
    }

  private:
    bool watch(int fd, uint32_t events) {
        epoll_event ev{events, {.fd = fd}};
        return ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
    }

    void run() {
        ::pthread_setname_np(::pthread_self(), "ember_api");
        if (options_.on_thread_start && !options_.on_thread_start()) return;
        epoll_event events[64];
        for (;;) {
            const int n = ::epoll_wait(epoll_fd_.get(), events, 64, wait_ms(Clock::now()));
            if (n < 0 && errno != EINTR) {
                const std::string why =
                    std::string("the API server's event loop failed: ") + std::strerror(errno);
                if (options_.on_failure)
                    options_.on_failure(why);
                else
                    warn(why);
                return;
            }
            const Clock::time_point now = Clock::now();
            for (int i = 0; i < std::max(n, 0); ++i) {
                const int fd = events[i].data.fd;
                if (fd == stop_fd_.get()) return;
                if (fd == listen_fd_.get()) {
                    accept_all(now);
                    continue;
                }
                auto it = connections_.find(fd);
                if (it == connections_.end()) continue;  // evicted earlier in this batch
                HttpConnection& c = *it->second.connection;
                const uint32_t got = events[i].events;
                bool open = true;
                if (got & EPOLLOUT) open = c.on_writable(now);
                if (open && (got & (EPOLLIN | EPOLLHUP | EPOLLERR))) open = c.on_readable(now);
                if (open) {
                    rearm(c);
                } else {
                    connections_.erase(it);
                }
            }
            expire(now);
            give_back_memory();
            if (accept_paused_ && now >= accept_resume_) {
                accept_paused_ = false;
                watch(listen_fd_.get(), EPOLLIN);
            }
        }
    }

    // After a crowd of connections has mostly gone, the heap they grew is handed back to the
    // kernel: glibc keeps freed memory in the thread's arena, so a burst of hundreds of clients
    // would otherwise leave ember tens of MB larger for good.
    void give_back_memory() {
        crowd_ = std::max(crowd_, connections_.size());
        if (crowd_ < kCrowd || connections_.size() > crowd_ / 4) return;
        ::malloc_trim(0);
        crowd_ = connections_.size();
    }

    int wait_ms(Clock::time_point now) const {
        Clock::time_point until = now + std::chrono::seconds(1);
        if (accept_paused_) until = std::min(until, accept_resume_);
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
        return static_cast<int>(std::max<int64_t>(ms, 0));
    }

    void accept_all(Clock::time_point now) {
        for (int accepted = 0; accepted < 64; ++accepted) {
            if (connections_.size() >= kMaxConnections) evict_oldest();
            const int fd =
                ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0) {
                auto c = std::make_unique<HttpConnection>(UniqueFd(fd), *options_.handler, limits(),
                                                          now, &budget_);
                epoll_event ev{c->events(), {.fd = fd}};
                if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0)
                    connections_.emplace(fd, Entry{std::move(c), next_serial_++});
                continue;
            }
            const int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) return;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
            warn_limited(now, std::string("accepting an API connection failed: ") +
                                  std::strerror(err) +
                                  (err == EMFILE || err == ENFILE
                                       ? " (out of file descriptors; the oldest idle connection "
                                         "gives way)"
                                       : ""));
            // Out of descriptors: a connection's is the one we can free.
            if ((err == EMFILE || err == ENFILE) && evict_oldest()) continue;
            ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, listen_fd_.get(), nullptr);
            accept_paused_ = true;
            accept_resume_ = now + kAcceptBackoff;
            return;
        }
    }

    RequestLimits limits() const {
        RequestLimits l;
        l.max_payload = options_.max_payload;
        return l;
    }

    void rearm(const HttpConnection& c) {
        epoll_event ev{c.events(), {.fd = c.fd()}};
        ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, c.fd(), &ev);
    }

    bool evict_oldest() {
        // Connections accepted in one batch share a time; the earlier accepted goes first.
        auto oldest = std::ranges::min_element(connections_, {}, [](const auto& entry) {
            return std::pair(entry.second.connection->since(), entry.second.serial);
        });
        if (oldest == connections_.end()) return false;
        connections_.erase(oldest);
        return true;
    }

    void expire(Clock::time_point now) {
        if (now - last_sweep_ < std::chrono::milliseconds(200)) return;
        last_sweep_ = now;
        std::erase_if(connections_, [now](const auto& entry) {
            return entry.second.connection->deadline() <= now;
        });
    }

    void warn(const std::string& message) {
        if (options_.on_warning) options_.on_warning(message);
    }

    void warn_limited(Clock::time_point now, const std::string& message) {
        if (now - last_warning_ < kWarningInterval) return;
        last_warning_ = now;
        warn(message);
    }

    HttpServerOptions options_;
    UniqueFd listen_fd_;
    UniqueFd epoll_fd_;
    UniqueFd stop_fd_;
    std::thread thread_;
    struct Entry {
        std::unique_ptr<HttpConnection> connection;
        uint64_t serial;
    };
    OutputBudget budget_;  // before connections_, which give their share back as they go
    std::unordered_map<int, Entry> connections_;  // by fd
    uint64_t next_serial_ = 0;
    size_t crowd_ = 0;  // the most connections open at once since memory was last given back
    bool accept_paused_ = false;
    Clock::time_point accept_resume_{};
    Clock::time_point last_sweep_{};
    Clock::time_point last_warning_{};
};

}  // namespace
}  // namespace ember::api

// The one symbol ember looks up. Ownership passes to the caller, which deletes it to stop serving
// (released from a unique_ptr here and re-wrapped by ember: a dlopen boundary passes plain
// pointers).
extern "C" ember::api::HttpServer* ember_api_http_start(
    const ember::api::HttpServerOptions& options, std::string& error) {
    if (options.listen_fd < 0 || options.handler == nullptr) {
        error = "the API server needs a listening socket and a handler";
        return nullptr;
    }
    auto server = std::make_unique<ember::api::UdsHttpServer>(options);
    if (!server->start(error)) return nullptr;
    return server.release();
}
