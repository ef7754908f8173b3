#include "api/http/http_connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include "core/base/file_io.h"

#include <cerrno>

namespace ember::api {
namespace {

// Requests are not read further while this much of the client's answers is unsent, nor bytes
// while this much input waits: a client that writes without reading holds a bounded buffer.
constexpr size_t kMaxPendingOutput = 256 * 1024;
constexpr size_t kMaxPendingInput = 64 * 1024;
// A closing connection drops at most this much of what its client still sends.
constexpr size_t kMaxDiscard = 1024 * 1024;

const char* reason(int status) {
    switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        default: return "Internal Server Error";
    }
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (static_cast<unsigned char>(c) < 0x20) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\u00";
            out += kHex[(c >> 4) & 0xf];
            out += kHex[c & 0xf];
        } else {
            out += c;
        }
    }
    return out + "\"";
}

}  // namespace

HttpConnection::HttpConnection(UniqueFd fd, RequestHandler& handler, RequestLimits limits,
                               Clock::time_point now)
    : fd_(std::move(fd)), handler_(handler), parser_(limits), since_(now) {}

uint32_t HttpConnection::events() const {
    uint32_t events = output_.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT);
    if (peer_closed_) return events;
    if (write_shut_ || (output_.size() < kMaxPendingOutput && input_.size() < kMaxPendingInput))
        events |= EPOLLIN;
    return events;
}

HttpConnection::Clock::time_point HttpConnection::deadline() const {
    if (write_shut_) return linger_until_;
    const bool busy = parser_.in_request() || !input_.empty() || !output_.empty();
    return since_ + (busy ? Clock::duration(kRequestDeadline) : Clock::duration(kIdleTimeout));
}

bool HttpConnection::on_readable(Clock::time_point now) {
    char buffer[16384];
    // A few reads per wake-up, so one busy client cannot starve the others.
    for (int reads = 0; reads < 4 && (write_shut_ || input_.size() < kMaxPendingInput); ++reads) {
        const ssize_t n =
            retry_on_eintr([&] { return ::recv(fd_.get(), buffer, sizeof buffer, 0); });
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0) return false;
        if (n == 0) {
            // The client is done sending; what it asked before that is still answered.
            if (write_shut_) return false;
            serve_buffered(now);
            closing_ = peer_closed_ = true;
            return flush(now) && !write_shut_;
        }
        if (closing_) {
            discarded_ += static_cast<size_t>(n);
            if (discarded_ > kMaxDiscard) return false;
            continue;
        }
        if (input_.empty() && !parser_.in_request()) since_ = now;  // a new request begins
        input_.append(buffer, static_cast<size_t>(n));
    }
    serve_buffered(now);
    return flush(now);
}

bool HttpConnection::on_writable(Clock::time_point now) {
    if (!flush(now)) return false;
    serve_buffered(now);
    return flush(now) && !(write_shut_ && peer_closed_);
}

void HttpConnection::serve_buffered(Clock::time_point now) {
    while (!closing_ && output_.size() < kMaxPendingOutput && !input_.empty()) {
        const RequestParser::Status status = parser_.feed(input_);
        if (parser_.take_continue_request()) output_ += "HTTP/1.1 100 Continue\r\n\r\n";
        if (status == RequestParser::Status::NeedMore) return;
        if (status == RequestParser::Status::Refused) {
            refuse(parser_.refusal());
            return;
        }
        const ParsedRequest request = parser_.take_request();
        answer(request, handler_.handle(request.request));
        since_ = now;
        if (!request.keep_alive) closing_ = true;
    }
}

void HttpConnection::answer(const ParsedRequest& request, const HttpResponse& response) {
    output_ += "HTTP/1.1 " + std::to_string(response.status) + " " + reason(response.status) +
               "\r\nServer: Firecracker API\r\nConnection: " +
               (request.keep_alive ? "keep-alive" : "close") + "\r\n";
    if (response.deprecated) output_ += "Deprecation: true\r\n";
    if (response.status != 204)
        output_ += "Content-Type: application/json\r\nContent-Length: " +
                   std::to_string(response.body.size()) + "\r\n";
    output_ += "\r\n";
    if (!request.head_only) output_ += response.body;
}

void HttpConnection::refuse(const RequestRefusal& refusal) {
    const std::string body = "{\"fault_message\":" + json_string(refusal.fault_message) + "}";
    output_ +=
        "HTTP/1.1 400 Bad Request\r\nServer: Firecracker API\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    closing_ = true;
    input_.clear();
}

bool HttpConnection::flush(Clock::time_point now) {
    while (!output_.empty()) {
        const ssize_t n = retry_on_eintr(
            [&] { return ::send(fd_.get(), output_.data(), output_.size(), MSG_NOSIGNAL); });
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n <= 0) return false;
        output_.erase(0, static_cast<size_t>(n));
    }
    if (closing_ && !write_shut_) {
        // The client reads its last answer and then end of stream; what it still sends is read
        // and dropped for a while, since closing with unread bytes would reset the connection.
        ::shutdown(fd_.get(), SHUT_WR);
        write_shut_ = true;
        linger_until_ = now + kLinger;
        input_.clear();
    }
    return true;
}

}  // namespace ember::api
