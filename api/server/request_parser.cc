#include "api/server/request_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace ember::api {
namespace {

bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::ranges::transform(out, out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string too_large(std::string_view size, size_t limit) {
    return "Request payload with size " + std::string(size) + " is larger than the limit of " +
           std::to_string(limit) +
           " allowed by server.\nAll previous unanswered requests will be dropped.";
}

// Where a head ends, from `from` on: a line that is empty, with or without its CR (RFC 9112 2.2
// lets a recipient take a bare LF as a line's end). `head` is the head's length up to and with its
// last header line's LF; `size` is that plus the empty line.
struct HeadEnd {
    size_t head, size;
};
std::optional<HeadEnd> find_head_end(std::string_view input, size_t from) {
    for (size_t lf = input.find('\n', from); lf != std::string_view::npos;
         lf = input.find('\n', lf + 1)) {
        if (lf + 1 < input.size() && input[lf + 1] == '\n') return HeadEnd{lf + 1, lf + 2};
        if (lf + 2 < input.size() && input[lf + 1] == '\r' && input[lf + 2] == '\n')
            return HeadEnd{lf + 1, lf + 3};
    }
    return std::nullopt;
}

// The next line of a head and what follows it; the line without its LF or CRLF.
std::string_view next_line(std::string_view& head) {
    const size_t lf = head.find('\n');
    std::string_view line = head.substr(0, lf);
    head.remove_prefix(lf == std::string_view::npos ? head.size() : lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

}  // namespace

RequestParser::Status RequestParser::refuse(std::string fault_message) {
    state_ = State::Refused;
    expect_continue_ = false;  // the refusal is the answer
    refusal_ = {std::move(fault_message)};
    return Status::Refused;
}

RequestParser::Status RequestParser::feed(std::string& input) {
    if (state_ == State::Refused) return Status::Refused;
    if (state_ == State::Head) {
        // Blank lines before a request line are allowed (RFC 9112 2.2).
        if (scanned_ == 0) {
            const size_t blank = input.find_first_not_of("\r\n");
            input.erase(0, blank == std::string::npos ? input.size() : blank);
        }
        const std::optional<HeadEnd> end = find_head_end(input, scanned_ > 2 ? scanned_ - 2 : 0);
        if (!end || end->size > limits_.max_head) {
            if (input.size() > limits_.max_head)
                return refuse("Request head is larger than the limit of " +
                              std::to_string(limits_.max_head) + " bytes.");
            scanned_ = input.size();
            return Status::NeedMore;
        }
        scanned_ = 0;
        current_ = {};
        chunked_ = expect_continue_ = false;
        remaining_ = trailer_bytes_ = 0;
        const Status head = parse_head(std::string_view(input).substr(0, end->head));
        input.erase(0, end->size);
        if (head != Status::Complete) return head;
        if (Status s = after_head(); s != Status::NeedMore) return s;
    }
    if (state_ == State::Body) {
        const size_t n = std::min(remaining_, input.size());
        current_.request.body.append(input, 0, n);
        input.erase(0, n);
        remaining_ -= n;
        return remaining_ == 0 ? Status::Complete : Status::NeedMore;
    }
    return feed_chunked(input);
}

RequestParser::Status RequestParser::parse_head(std::string_view head) {
    const std::string_view request_line = next_line(head);

    const size_t sp1 = request_line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return refuse("Malformed request line.");
    const std::string_view method = request_line.substr(0, sp1);
    const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = request_line.substr(sp2 + 1);
    if (method.empty() || !std::ranges::all_of(method, is_token_char))
        return refuse("Malformed request line.");
    if (target.empty() || target.front() != '/' ||
        std::ranges::any_of(target, [](unsigned char c) { return c <= 0x20 || c == 0x7f; }))
        return refuse("Malformed request target.");
    if (version != "HTTP/1.1" && version != "HTTP/1.0")
        return refuse("Unsupported HTTP version: " + std::string(version.substr(0, 16)) + ".");
    current_.request.method = method;
    current_.request.path = target.substr(0, target.find('?'));
    current_.head_only = method == "HEAD";
    current_.keep_alive = version == "HTTP/1.1";

    std::optional<std::string> content_length;
    size_t headers = 0;
    while (!head.empty()) {
        const std::string_view line = next_line(head);
        if (++headers > limits_.max_headers)
            return refuse("More than " + std::to_string(limits_.max_headers) + " headers.");
        const size_t colon = line.find(':');
        const std::string_view name = line.substr(0, colon);
        if (colon == std::string_view::npos || name.empty() ||
            !std::ranges::all_of(name, is_token_char))
            return refuse("Malformed header line.");
        const std::string key = lower(name);
        const std::string_view value = trim(line.substr(colon + 1));
        if (key == "content-length") {
            if (value.empty() || value.size() > 19 ||
                value.find_first_not_of("0123456789") != std::string_view::npos ||
                (content_length && *content_length != value))
                return refuse("Invalid Content-Length header.");
            content_length = std::string(value);
        } else if (key == "transfer-encoding") {
            if (lower(value) != "chunked")
                return refuse("Transfer-Encoding " + std::string(value.substr(0, 64)) +
                              " is not supported.");
            chunked_ = true;
        } else if (key == "content-encoding") {
            // Inflating a body would let a few KB on the socket become any size in memory.
            if (lower(value) != "identity")
                return refuse("Content-Encoding " + std::string(value.substr(0, 64)) +
                              " is not supported.");
        } else if (key == "expect") {
            expect_continue_ = lower(value) == "100-continue";
        } else if (key == "connection") {
            const std::string v = lower(value);
            if (v.find("close") != std::string::npos) current_.keep_alive = false;
            if (v.find("keep-alive") != std::string::npos) current_.keep_alive = true;
        }
    }
    if (chunked_ && content_length)
        return refuse("A request cannot have both Content-Length and Transfer-Encoding.");
    if (content_length) {
        uint64_t n = 0;
        std::from_chars(content_length->data(), content_length->data() + content_length->size(), n);
        remaining_ = static_cast<size_t>(n);
    }
    return Status::Complete;
}

RequestParser::Status RequestParser::after_head() {
    const std::string& method = current_.request.method;
    const bool may_have_body = method == "PUT" || method == "PATCH" || method == "POST";
    if (!may_have_body && (remaining_ > 0 || chunked_))
        return refuse(method + " request cannot have a body.");
    if (remaining_ > limits_.max_payload)
        return refuse(too_large(std::to_string(remaining_), limits_.max_payload));
    if (chunked_) {
        state_ = State::ChunkSize;
        return Status::NeedMore;
    }
    state_ = State::Body;
    if (remaining_ == 0) expect_continue_ = false;
    return remaining_ == 0 ? Status::Complete : Status::NeedMore;
}

std::optional<std::string_view> RequestParser::take_line(std::string& input, size_t max) {
    const size_t nl = input.find('\n');
    const size_t n = nl == std::string::npos ? input.size() : nl + 1;
    line_too_long_ = line_.size() + n > max + 2;  // max, then CRLF
    if (line_too_long_) return std::nullopt;
    line_.append(input, 0, n);
    input.erase(0, n);
    if (nl == std::string::npos) return std::nullopt;
    std::string_view line(line_);
    line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

RequestParser::Status RequestParser::feed_chunked(std::string& input) {
    constexpr size_t kMaxChunkLine = 1024;
    while (!input.empty()) {
        if (state_ == State::ChunkData) {
            const size_t n = std::min(remaining_, input.size());
            current_.request.body.append(input, 0, n);
            input.erase(0, n);
            remaining_ -= n;
            if (remaining_ == 0) state_ = State::ChunkEnd;
            continue;
        }
        const size_t max = state_ == State::ChunkSize ? kMaxChunkLine : limits_.max_head;
        const std::optional<std::string_view> line = take_line(input, max);
        if (!line) {
            if (line_too_long_) return refuse("Malformed chunked body.");
            return Status::NeedMore;
        }
        const std::string_view text = *line;
        if (state_ == State::ChunkEnd) {
            if (!text.empty()) return refuse("Malformed chunked body.");
            state_ = State::ChunkSize;
        } else if (state_ == State::ChunkSize) {
            const std::string_view digits = trim(text.substr(0, text.find(';')));
            uint64_t size = 0;
            auto [end, ec] =
                std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
            if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
                return refuse("Malformed chunked body.");
            const size_t so_far = current_.request.body.size();
            if (size > limits_.max_payload - so_far)
                return refuse(
                    too_large(std::to_string(std::max(so_far + size, size)), limits_.max_payload));
            remaining_ = static_cast<size_t>(size);
            state_ = size == 0 ? State::Trailers : State::ChunkData;
        } else {  // Trailers: ignored, bounded like a head
            trailer_bytes_ += text.size() + 2;
            if (trailer_bytes_ > limits_.max_head) return refuse("Malformed chunked body.");
            if (text.empty()) {
                line_.clear();
                state_ = State::Body;  // remaining_ is 0: the next feed completes nothing more
                return Status::Complete;
            }
        }
        line_.clear();
    }
    return Status::NeedMore;
}

ParsedRequest RequestParser::take_request() {
    state_ = State::Head;
    scanned_ = 0;
    line_.clear();
    return std::move(current_);
}

bool RequestParser::take_continue_request() {
    const bool asked = expect_continue_;
    expect_continue_ = false;
    return asked;
}

}  // namespace ember::api
