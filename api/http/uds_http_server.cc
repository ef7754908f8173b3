// libember_api_http.so: HTTP/1.1 on a Unix socket with Debian's cpp-httplib, which has no
// Unix-socket listener of its own: we accept connections ourselves and hand each request to its
// protected Server::process_request (request_server.h) through a Stream over the accepted fd.
//
// Each connection gets its own thread and a read timeout, so a slow, stalled or vanished client
// holds up nobody else; keep-alive is served until the client closes.
#include <httplib.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "api/http/http_types.h"
#include "api/http/request_server.h"

namespace ember::api {
namespace {

constexpr int kReadTimeoutMs = 5000;   // a request must arrive whole within this
constexpr int kIdleTimeoutMs = 60000;  // an idle keep-alive connection is closed after this
constexpr size_t kMaxConnections = 256;

class FdStream : public httplib::Stream {
  public:
    explicit FdStream(int fd) : fd_(fd) {}
    bool is_writable() const override { return wait(POLLOUT, kReadTimeoutMs); }
    // Buffered: cpp-httplib reads request lines one byte at a time, and a recv per byte would
    // cost ~200 system calls per request.
    bool is_readable() const override { return start_ < end_ || wait(POLLIN, kReadTimeoutMs); }
    ssize_t read(char* ptr, size_t size) override {
        if (start_ == end_) {
            if (!wait(POLLIN, kReadTimeoutMs)) return -1;
            ssize_t n;
            do {
                n = ::recv(fd_, buffer_, sizeof buffer_, 0);
            } while (n < 0 && errno == EINTR);
            if (n <= 0) return n;
            start_ = 0;
            end_ = static_cast<size_t>(n);
        }
        size_t n = std::min(size, end_ - start_);
        std::memcpy(ptr, buffer_ + start_, n);
        start_ += n;
        return static_cast<ssize_t>(n);
    }
    bool has_buffered() const { return start_ < end_; }
    ssize_t write(const char* ptr, size_t size) override {
        size_t done = 0;
        while (done < size) {
            if (!is_writable()) return -1;
            ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return -1;
            done += static_cast<size_t>(n);
        }
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
    socket_t socket() const override { return fd_; }

  private:
    bool wait(short events, int timeout_ms) const {
        pollfd p{fd_, events, 0};
        int r;
        do {
            r = ::poll(&p, 1, timeout_ms);
        } while (r < 0 && errno == EINTR);
        return r > 0 && (p.revents & events);
    }
    int fd_;
    char buffer_[4096];
    size_t start_ = 0, end_ = 0;
};

class UdsHttpServer : public RequestServer, public HttpServer {
  public:
    explicit UdsHttpServer(const HttpServerOptions& options)
        : RequestServer(*options.handler, options.max_payload), options_(options) {}

    ~UdsHttpServer() override {
        stopping_ = true;
        ::shutdown(listen_fd_, SHUT_RDWR);
        if (acceptor_.joinable()) acceptor_.join();
        {
            // Reading stops; an answer being written still goes out (the one to a request that
            // ended the VMM, for one).
            std::lock_guard lock(mutex_);
            for (auto& c : connections_) ::shutdown(c.fd, SHUT_RD);
        }
        for (auto& c : connections_) c.thread.join();
        ::close(listen_fd_);
        ::unlink(options_.socket_path.c_str());
    }

    bool start(std::string& error) {
        listen_fd_ = options_.listen_fd;
        try {
            acceptor_ = std::thread([this] { accept_loop(); });
        } catch (const std::system_error& e) {
            error = std::string("cannot start the API server's thread: ") + e.what();
            return false;
        }
        return true;
    }

  private:
    struct Connection {
        int fd;
        std::thread thread;
        std::atomic<bool> done{false};
    };

    static bool failed(std::string& error, std::string message) {
        error = std::move(message);
        return false;
    }

    void accept_loop() {
        ::pthread_setname_np(::pthread_self(), "ember_api");
        if (options_.on_thread_start && !options_.on_thread_start()) return;
        while (!stopping_) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                return;  // shut down
            }
            std::lock_guard lock(mutex_);
            reap_finished();
            if (connections_.size() >= kMaxConnections) {
                ::close(fd);
                continue;
            }
            auto& c = connections_.emplace_back();
            c.fd = fd;
            // Without a thread (the host's task limit reached) the client sees its connection
            // closed, and the server keeps accepting.
            try {
                c.thread = std::thread([this, &c] { serve(c); });
            } catch (const std::system_error&) {
                ::close(fd);
                connections_.pop_back();
            }
        }
    }

    void reap_finished() {
        for (auto it = connections_.begin(); it != connections_.end();) {
            if (it->done) {
                it->thread.join();
                it = connections_.erase(it);
            } else {
                ++it;
            }
        }
    }

    void serve(Connection& c) {
        FdStream stream(c.fd);
        while (!stopping_) {
            pollfd p{c.fd, POLLIN, 0};
            if (::poll(&p, 1, kIdleTimeoutMs) <= 0 ||
                (p.revents & (POLLHUP | POLLERR) && !(p.revents & POLLIN)))
                break;
            if (!serve_one(stream)) break;
        }
        ::close(c.fd);
        c.done = true;
    }

    HttpServerOptions options_;
    int listen_fd_ = -1;
    std::atomic<bool> stopping_{false};
    std::thread acceptor_;
    std::mutex mutex_;
    std::list<Connection> connections_;
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
