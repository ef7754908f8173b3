#include "api/server/uds_http_server.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace ember::api {
namespace {

constexpr size_t kMaxConnections = 512;
// So many connections at once are a crowd whose memory is worth giving back when it leaves.
constexpr size_t kCrowd = 64;
// After an accept error nothing else cures (the host's file table full), accepting pauses this
// long instead of spinning on a listening socket that stays readable.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
constexpr auto kWarningInterval = std::chrono::seconds(10);
constexpr auto kSweepInterval = std::chrono::milliseconds(200);

}  // namespace

Result<std::unique_ptr<UdsHttpServer>> UdsHttpServer::start(HttpServerOptions options) {
    if (!options.listen_fd.valid() || options.handler == nullptr)
        return fail("the API server needs a listening socket and a handler");
    // Accepted until EAGAIN at each wake-up: the loop must never block in accept4.
    const int fd = options.listen_fd.get();
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return fail_errno("the API socket");
    auto loop = EventLoop::create();
    EMBER_TRY(loop, "the API server's event loop");
    auto stop = EventFd::create();
    EMBER_TRY(stop, "the API server's event loop");
    auto server =
        std::make_unique<UdsHttpServer>(std::move(options), std::move(*loop), std::move(*stop));
    EMBER_TRY(server->begin());
    return server;
}

UdsHttpServer::UdsHttpServer(HttpServerOptions options, EventLoop loop, EventFd stop)
    : options_(std::move(options)), loop_(std::move(loop)), stop_(std::move(stop)) {}

Result<void> UdsHttpServer::begin() {
    EMBER_TRY(loop_.add(stop_.fd(), EPOLLIN, [this](uint32_t) { stopping_ = true; }),
              "the API server's event loop");
    EMBER_TRY(watch_listener(), "the API server's event loop");
    try {
        thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
        return fail(std::string("cannot start the API server's thread: ") + e.what());
    }
    return {};
}

Result<void> UdsHttpServer::watch_listener() {
    return loop_.add(options_.listen_fd.get(), EPOLLIN,
                     [this](uint32_t) { accept_all(Clock::now()); });
}

UdsHttpServer::~UdsHttpServer() {
    stop_.signal();
    if (thread_.joinable()) thread_.join();
    ::unlink(options_.socket_path.c_str());
}

void UdsHttpServer::run() {
    ::pthread_setname_np(::pthread_self(), "ember_api");
    if (options_.on_thread_start && !options_.on_thread_start()) return;
    while (!stopping_) {
        auto ran = loop_.run_once(wait_ms(Clock::now()));
        if (!ran) {
            const std::string why = "the API server's event loop failed: " + ran.error().message;
            if (options_.on_failure)
                options_.on_failure(why);
            else
                warn(why);
            return;
        }
        const Clock::time_point now = Clock::now();
        expire(now);
        give_back_memory();
        if (accept_paused_ && now >= accept_resume_) {
            if (auto r = watch_listener(); r)
                accept_paused_ = false;
            else
                accept_resume_ = now + kAcceptBackoff;
        }
    }
}

void UdsHttpServer::on_connection(int fd, uint32_t events) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    HttpConnection& c = *it->second.connection;
    const Clock::time_point now = Clock::now();
    bool open = true;
    if (events & EPOLLOUT) open = c.on_writable(now);
    if (open && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) open = c.on_readable(now);
    if (open && loop_.modify(fd, c.events())) return;
    close(it);
}

void UdsHttpServer::accept_all(Clock::time_point now) {
    for (int accepted = 0; accepted < 64; ++accepted) {
        if (connections_.size() >= kMaxConnections) evict_oldest();
        const int fd =
            ::accept4(options_.listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            auto c = std::make_unique<HttpConnection>(
                UniqueFd(fd), *options_.handler, RequestLimits{.max_payload = options_.max_payload},
                now, &budget_);
            const uint32_t events = c->events();
            auto [it, added] = connections_.emplace(fd, Entry{std::move(c), next_serial_++});
            if (!loop_.add(fd, events, [this, fd](uint32_t got) { on_connection(fd, got); }))
                connections_.erase(it);
            continue;
        }
        const int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
        warn_limited(now, std::string("accepting an API connection failed: ") + std::strerror(err) +
                              (err == EMFILE || err == ENFILE
                                   ? " (out of file descriptors; the oldest idle connection "
                                     "gives way)"
                                   : ""));
        // Out of descriptors: a connection's is the one we can free.
        if ((err == EMFILE || err == ENFILE) && evict_oldest()) continue;
        pause_accepting(now);
        return;
    }
}

void UdsHttpServer::pause_accepting(Clock::time_point now) {
    loop_.remove(options_.listen_fd.get());
    accept_paused_ = true;
    accept_resume_ = now + kAcceptBackoff;
}

// The loop lets go of the fd before the connection closes it.
void UdsHttpServer::close(Connections::iterator it) {
    loop_.remove(it->first);
    connections_.erase(it);
}

bool UdsHttpServer::evict_oldest() {
    // Connections accepted in one batch share a time; the earlier accepted goes first.
    auto oldest = std::ranges::min_element(connections_, {}, [](const auto& entry) {
        return std::pair(entry.second.connection->since(), entry.second.serial);
    });
    if (oldest == connections_.end()) return false;
    close(oldest);
    return true;
}

void UdsHttpServer::expire(Clock::time_point now) {
    if (now - last_sweep_ < kSweepInterval) return;
    last_sweep_ = now;
    for (auto it = connections_.begin(); it != connections_.end();) {
        auto next = std::next(it);
        if (it->second.connection->deadline() <= now) close(it);
        it = next;
    }
}

// After a crowd of connections has mostly gone, the heap they grew is handed back to the kernel:
// glibc keeps freed memory in the thread's arena, so a burst of hundreds of clients would
// otherwise leave ember tens of MB larger for good.
void UdsHttpServer::give_back_memory() {
    crowd_ = std::max(crowd_, connections_.size());
    if (crowd_ < kCrowd || connections_.size() > crowd_ / 4) return;
    ::malloc_trim(0);
    crowd_ = connections_.size();
}

int UdsHttpServer::wait_ms(Clock::time_point now) const {
    Clock::time_point until = now + std::chrono::seconds(1);
    if (accept_paused_) until = std::min(until, accept_resume_);
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    return static_cast<int>(std::max<int64_t>(ms, 0));
}

void UdsHttpServer::warn(const std::string& message) {
    if (options_.on_warning) options_.on_warning(message);
}

void UdsHttpServer::warn_limited(Clock::time_point now, const std::string& message) {
    if (now - last_warning_ < kWarningInterval) return;
    last_warning_ = now;
    warn(message);
}

}  // namespace ember::api
