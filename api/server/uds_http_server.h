// The API server: HTTP/1.1 on the API's Unix socket, served by one thread (the API thread) on its
// own core/event_loop over every connection, as Firecracker's API server is one thread. No client
// can hold up the others: sockets are non-blocking, a whole request must arrive within its
// deadline, and when connections run out (our cap, or the process's file limit) the oldest idle
// one gives way to the newcomer. A request that the VMM thread takes long over (a snapshot load)
// holds up the requests behind it, on every connection, as in Firecracker.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "api/server/http_connection.h"
#include "api/server/http_types.h"
#include "core/base/error.h"
#include "core/base/event_fd.h"
#include "core/base/unique_fd.h"
#include "core/event_loop/event_loop.h"

namespace ember::api {

struct HttpServerOptions {
    std::string socket_path;  // removed when the server stops
    UniqueFd listen_fd;       // already listening on socket_path
    size_t max_payload = 51200;
    RequestHandler* handler = nullptr;  // not owned; outlives the server
    // Run first on the server's thread, before it accepts anyone (ember installs the API
    // thread's seccomp filter there). false: the server accepts nobody.
    std::function<bool()> on_thread_start;
    // What went wrong that the server rides out (accept errors, at most one line every 10 s).
    std::function<void(const std::string&)> on_warning;
    // The server cannot go on serving (its event loop failed): ember stops, rather than run on
    // with no API and nobody told.
    std::function<void(const std::string&)> on_failure;
};

class UdsHttpServer {
  public:
    // Starts the API thread serving options.listen_fd.
    static Result<std::unique_ptr<UdsHttpServer>> start(HttpServerOptions options);
    // Stops serving, closes every connection and removes the socket file.
    ~UdsHttpServer();
    UdsHttpServer(const UdsHttpServer&) = delete;
    UdsHttpServer& operator=(const UdsHttpServer&) = delete;

    UdsHttpServer(HttpServerOptions options, EventLoop loop, EventFd stop);

  private:
    using Clock = HttpConnection::Clock;
    struct Entry {
        std::unique_ptr<HttpConnection> connection;
        uint64_t serial;
    };
    using Connections = std::unordered_map<int, Entry>;  // by fd

    Result<void> begin();
    Result<void> watch_listener();
    void run();
    void on_connection(int fd, uint32_t events);
    void accept_all(Clock::time_point now);
    void close(Connections::iterator it);
    bool evict_oldest();
    void expire(Clock::time_point now);
    void give_back_memory();
    void pause_accepting(Clock::time_point now);
    int wait_ms(Clock::time_point now) const;
    void warn(const std::string& message);
    void warn_limited(Clock::time_point now, const std::string& message);

    HttpServerOptions options_;
    EventLoop loop_;
    EventFd stop_;
    bool stopping_ = false;  // the destructor rang stop_
    OutputBudget budget_;    // before connections_, which give their share back as they go
    Connections connections_;
    uint64_t next_serial_ = 0;
    size_t crowd_ = 0;  // the most connections open at once since memory was last given back
    bool accept_paused_ = false;
    Clock::time_point accept_resume_{};
    Clock::time_point last_sweep_{};
    Clock::time_point last_warning_{};
    std::thread thread_;  // last: it starts once everything it uses exists
};

}  // namespace ember::api
