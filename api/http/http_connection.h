// One client of the API socket, served from the API thread's event loop: bytes in, through the
// request parser, to the handler, and answers out, in order, for as many requests as the client
// sends on the connection (pipelined ones included). Non-blocking: a client that stops reading or
// writing holds up nobody but itself, and only until its deadline.
#pragma once

#include <chrono>
#include <string>

#include "api/http/http_types.h"
#include "api/http/request_parser.h"
#include "core/base/unique_fd.h"

namespace ember::api {

class HttpConnection {
  public:
    using Clock = std::chrono::steady_clock;

    // A whole request must arrive within this, from its first byte.
    static constexpr auto kRequestDeadline = std::chrono::seconds(10);
    // A keep-alive connection with no request under way is closed after this.
    static constexpr auto kIdleTimeout = std::chrono::seconds(60);
    // A connection that is closing reads and drops what its client still sends for this long, so
    // the client sees its answer rather than a reset.
    static constexpr auto kLinger = std::chrono::seconds(2);

    HttpConnection(UniqueFd fd, RequestHandler& handler, RequestLimits limits,
                   Clock::time_point now);

    // Reads what has arrived and answers every request it completes. False: close it now.
    bool on_readable(Clock::time_point now);
    // Writes what is pending, then answers requests that waited for room. False: close it now.
    bool on_writable(Clock::time_point now);

    int fd() const { return fd_.get(); }
    // What the event loop should wait for on the fd: EPOLLIN, EPOLLOUT or both.
    uint32_t events() const;
    Clock::time_point deadline() const;
    // When its current request began, or its idle time: the oldest gives way first.
    Clock::time_point since() const { return since_; }

  private:
    void serve_buffered(Clock::time_point now);
    void answer(const ParsedRequest& request, const HttpResponse& response);
    void refuse(const RequestRefusal& refusal);
    bool flush(Clock::time_point now);

    UniqueFd fd_;
    RequestHandler& handler_;
    RequestParser parser_;
    std::string input_;
    std::string output_;
    Clock::time_point since_;
    bool closing_ = false;  // no more requests: answer what is queued, then linger
    bool write_shut_ = false;
    bool peer_closed_ = false;
    size_t discarded_ = 0;
    Clock::time_point linger_until_;
};

}  // namespace ember::api
