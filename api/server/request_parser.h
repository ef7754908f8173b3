// HTTP/1.1 requests read from a byte stream, one after another (pipelined requests included),
// with every size bounded as the bytes arrive: the request head, the number of headers, and the
// body however it is framed (Content-Length or chunked). A body with a Content-Encoding is refused
// rather than inflated. What cannot be served gets Firecracker's 400 and closes the connection,
// since what follows it cannot be told from a next request.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "api/server/http_types.h"

namespace ember::api {

struct RequestLimits {
    size_t max_payload = 51200;
    size_t max_head = 16 * 1024;  // request line and headers together
    size_t max_headers = 64;
};

// What a parser has after the bytes given so far.
struct ParsedRequest {
    HttpRequest request;
    bool head_only = false;  // a HEAD request: its answer has no body
    bool keep_alive = true;  // the client did not ask to close, nor speak HTTP/1.0 without asking
};

struct RequestRefusal {
    std::string fault_message;
};

class RequestParser {
  public:
    explicit RequestParser(RequestLimits limits) : limits_(limits) {}

    enum class Status { NeedMore, Complete, Refused };

    // Consumes from the front of `input` what belongs to the request being read. Complete: the
    // request is in request(), and `input` holds whatever follows it; Refused: refusal() says why.
    Status feed(std::string& input);

    ParsedRequest take_request();
    const RequestRefusal& refusal() const { return refusal_; }
    // The client asked for "100 Continue" before sending its body, and the head was accepted:
    // true once, right after the head.
    bool take_continue_request();
    // Some bytes of the current request have arrived (for the deadline of a whole request).
    bool in_request() const { return state_ != State::Head || scanned_ > 0; }

  private:
    enum class State { Head, Body, ChunkSize, ChunkData, ChunkEnd, Trailers, Refused };

    Status refuse(std::string fault_message);
    Status parse_head(std::string_view head);
    Status after_head();
    Status feed_chunked(std::string& input);
    std::optional<std::string_view> take_line(std::string& input, size_t max);

    RequestLimits limits_;
    State state_ = State::Head;
    size_t scanned_ = 0;  // bytes of `input` already searched for the end of the head
    ParsedRequest current_;
    bool chunked_ = false;
    bool expect_continue_ = false;
    size_t remaining_ = 0;  // of the Content-Length body, or of the current chunk
    size_t trailer_bytes_ = 0;
    std::string line_;  // a chunk-size or trailer line arriving in pieces
    bool line_too_long_ = false;
    RequestRefusal refusal_;
};

}  // namespace ember::api
