#include "api/server/http_connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include "core/base/file_io.h"

#include <algorithm>
#include <cerrno>

namespace ember::api {
namespace {

// Requests are not served while this much of the client's answers is unsent (past one answer,
// which may be larger), nor bytes read while this much input waits with a whole request in it
// (a request still arriving may have its whole head, up to the parser's limit): a client that
// writes without reading holds a small buffer of each.
constexpr size_t kMaxPendingOutput = 8 * 1024;
constexpr size_t kMaxPendingInput = 4 * 1024;
// A buffer that grew past this for one large answer is given back once it drains.
constexpr size_t kKeptCapacity = 64 * 1024;
// Requests answered in one wake-up before the others get their turn.
constexpr size_t kRequestsPerTurn = 64;
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
                               Clock::time_point now, OutputBudget* budget)
    : fd_(std::move(fd)),
      handler_(handler),
      parser_(limits),
      // Room for the largest head the parser takes and a byte more, so that it refuses a head
      // over its limit instead of waiting for bytes this buffer would never read.
      max_head_input_(std::max(kMaxPendingInput, limits.max_head + 1)),
      since_(now),
      budget_(budget) {}

HttpConnection::~HttpConnection() {
    if (budget_ != nullptr) budget_->used -= accounted_;
}

uint32_t HttpConnection::events() const {
    // Requests left for the next turn: a socket with room is writable at once, so EPOLLOUT brings
    // this connection back in the very next wait, without a timer.
    uint32_t events = output_.empty() && !more_ ? 0u : static_cast<uint32_t>(EPOLLOUT);
    if (peer_closed_) return events;
    if (write_shut_ || (output_.size() < kMaxPendingOutput && input_room() > 0)) events |= EPOLLIN;
    return events;
}

size_t HttpConnection::input_room() const {
    const size_t cap = starved_ ? max_head_input_ : kMaxPendingInput;
    return input_.size() < cap ? cap - input_.size() : 0;
}

HttpConnection::Clock::time_point HttpConnection::deadline() const {
    if (write_shut_) return linger_until_;
    const bool busy = parser_.in_request() || !input_.empty() || !output_.empty();
    return since_ + (busy ? Clock::duration(kRequestDeadline) : Clock::duration(kIdleTimeout));
}

bool HttpConnection::on_readable(Clock::time_point now) {
    served_this_wake_ = 0;
    char buffer[16384];
    // A few reads per wake-up, so one busy client cannot starve the others.
    for (int reads = 0; reads < 4; ++reads) {
        const bool discarding = closing_;
        const size_t room = discarding ? sizeof buffer : std::min(sizeof buffer, input_room());
        if (room == 0) break;
        const ssize_t n = retry_on_eintr([&] { return ::recv(fd_.get(), buffer, room, 0); });
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0) return false;
        if (n == 0) {
            // The client is done sending; what it asked before that is still answered.
            if (write_shut_) return false;
            closing_ = peer_closed_ = true;
            return pump(now) && !write_shut_;
        }
        if (discarding) {
            discarded_ += static_cast<size_t>(n);
            if (discarded_ > kMaxDiscard) return false;
            continue;
        }
        if (input_.empty() && !parser_.in_request()) since_ = now;  // a new request begins
        input_.append(buffer, static_cast<size_t>(n));
        starved_ = false;
        // Served as it comes, so that what a client pipelines never piles up here unparsed.
        if (!pump(now)) return false;
    }
    return pump(now);
}

bool HttpConnection::on_writable(Clock::time_point now) {
    served_this_wake_ = 0;
    return pump(now) && !(write_shut_ && peer_closed_);
}

bool HttpConnection::servable() const {
    // Once closing, only a client that closed its side still has requests answered: one that
    // asked to close has had the rest of its input dropped.
    if (write_shut_ || input_.empty() || starved_ || (closing_ && !peer_closed_)) return false;
    if (output_.empty()) return true;
    if (output_.size() >= kMaxPendingOutput) return false;
    return budget_ == nullptr || budget_->used < budget_->limit;
}

// Answers what the buffered input asks and sends it, for as long as the client takes the answers:
// a drained output with requests still buffered is served again here, not left waiting for bytes
// the client has already sent.
bool HttpConnection::pump(Clock::time_point now) {
    more_ = false;
    for (;;) {
        while (served_this_wake_ < kRequestsPerTurn && servable()) {
            if (serve_one(now)) ++served_this_wake_;
        }
        account();
        if (!flush(now)) return false;
        if (!output_.empty() || !servable()) return true;
        if (served_this_wake_ >= kRequestsPerTurn) {
            more_ = true;
            return true;
        }
    }
}

// Feeds the parser once; true when a request was answered.
bool HttpConnection::serve_one(Clock::time_point now) {
    const RequestParser::Status status = parser_.feed(input_);
    if (parser_.take_continue_request()) output_ += "HTTP/1.1 100 Continue\r\n\r\n";
    if (status == RequestParser::Status::NeedMore) {
        starved_ = true;
        return false;
    }
    if (status == RequestParser::Status::Refused) {
        refuse(parser_.refusal());
        return false;
    }
    const ParsedRequest request = parser_.take_request();
    answer(request, handler_.handle(request.request));
    since_ = now;
    if (!request.keep_alive) {
        closing_ = true;
        input_.clear();
    }
    return true;
}

void HttpConnection::account() {
    if (budget_ == nullptr) return;
    budget_->used = budget_->used - accounted_ + output_.size();
    accounted_ = output_.size();
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
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) return false;
        output_.erase(0, static_cast<size_t>(n));
    }
    if (output_.empty() && output_.capacity() > kKeptCapacity) std::string().swap(output_);
    account();
    // Closing, and nothing more to answer: a half-read request from a client that closed its side
    // can never complete.
    if (closing_ && !write_shut_ && output_.empty() && (input_.empty() || starved_)) {
        // The client reads its last answer and then end of stream; what it still sends is read
        // and dropped for a while, since closing with unread bytes would reset the connection.
        ::shutdown(fd_.get(), SHUT_WR);
        write_shut_ = true;
        linger_until_ = now + kLinger;
        input_.clear();
        std::string().swap(input_);
    }
    return true;
}

}  // namespace ember::api
