// One client of the API socket, served from the API thread's event loop: bytes in, through the
// request parser, to the handler, and answers out, in order, for as many requests as the client
// sends on the connection (pipelined ones included). Non-blocking: a client that stops reading or
// writing holds up nobody but itself, and only until its deadline. What it can make ember hold is
// small and bounded: a little input, a little output, and answers beyond that only from a budget
// that all connections share.
#pragma once

#include <chrono>
#include <string>

#include "api/server/http_types.h"
#include "api/server/request_parser.h"
#include "core/base/unique_fd.h"

namespace ember::api {

// Answers written but not yet taken by their clients, over all of a server's connections. A
// connection always gets to hold one answer; more only while the total is under the limit, so
// hundreds of clients that pipeline and never read cost a few MB, not hundreds.
struct OutputBudget {
    size_t limit = 4 * 1024 * 1024;
    size_t used = 0;
};

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

    // A connection without a budget holds answers up to its own bound alone.
    HttpConnection(UniqueFd fd, RequestHandler& handler, RequestLimits limits,
                   Clock::time_point now, OutputBudget* budget = nullptr);
    ~HttpConnection();
    HttpConnection(const HttpConnection&) = delete;
    HttpConnection& operator=(const HttpConnection&) = delete;

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
    bool pump(Clock::time_point now);
    bool servable() const;
    size_t input_room() const;
    bool serve_one(Clock::time_point now);
    void answer(const ParsedRequest& request, const HttpResponse& response);
    void refuse(const RequestRefusal& refusal);
    bool flush(Clock::time_point now);
    void account();

    UniqueFd fd_;
    RequestHandler& handler_;
    RequestParser parser_;
    size_t max_head_input_;
    std::string input_;
    std::string output_;
    Clock::time_point since_;
    bool closing_ = false;  // no more requests: answer what is queued, then linger
    bool write_shut_ = false;
    bool peer_closed_ = false;
    size_t discarded_ = 0;
    Clock::time_point linger_until_;
    OutputBudget* budget_;
    size_t accounted_ = 0;         // of output_, in budget_->used
    bool more_ = false;            // requests wait in input_ that this wake-up left for the next
    bool starved_ = false;         // input_ holds only the start of a request
    size_t served_this_wake_ = 0;  // requests answered since the event loop last called in
};

}  // namespace ember::api
