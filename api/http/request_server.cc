#include "api/http/request_server.h"

#include <string>

namespace ember::api {
namespace {

// Set by a handler on a connection's thread when the connection must close after its answer.
thread_local bool t_close_connection = false;

std::string too_large(const std::string& size, size_t limit) {
    return "{\"fault_message\":\"Request payload with size " + size +
           " is larger than the limit of " + std::to_string(limit) +
           " allowed by server.\\nAll previous unanswered requests will be dropped.\"}";
}

}  // namespace

RequestServer::RequestServer(RequestHandler& handler, size_t max_payload)
    : handler_(handler), max_payload_(max_payload) {
    set_payload_max_length(max_payload);
    auto handle = [this](const httplib::Request& req, httplib::Response& res) {
        HttpResponse out = handler_.handle(HttpRequest{req.method, req.path, req.body});
        res.status = out.status;
        if (out.deprecated) res.set_header("Deprecation", "true");
        if (!out.body.empty()) res.set_content(out.body, "application/json");
    };
    // A body announced over the limit is refused from its headers, before it is read: a client
    // that sends less than it announced gets its answer at once instead of waiting. What it did
    // send cannot be told from a next request, so the connection closes.
    // cpp-httplib reads no body for a GET; Firecracker refuses one. Unread, it would be taken for
    // the next request, so this connection closes too.
    set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        const std::string length = req.get_header_value("Content-Length");
        if (length.empty() || length.size() > 19 ||
            length.find_first_not_of("0123456789") != std::string::npos)
            return HandlerResponse::Unhandled;
        const uint64_t bytes = std::stoull(length);
        // The answer is the last on this connection: what follows its head is not a request.
        auto refuse_and_close = [&res](const std::string& fault_json) {
            res.status = 400;
            res.set_content(fault_json, "application/json");
            t_close_connection = true;
            return HandlerResponse::Handled;
        };
        if (bytes > 0 && req.method != "PUT" && req.method != "PATCH" && req.method != "POST")
            return refuse_and_close("{\"fault_message\":\"" + req.method +
                                    " request cannot have a body.\"}");
        if (bytes <= max_payload_) return HandlerResponse::Unhandled;
        return refuse_and_close(too_large(length, max_payload_));
    });
    Get(R"(.*)", handle);
    Put(R"(.*)", handle);
    Patch(R"(.*)", handle);
    Post(R"(.*)", handle);
    Delete(R"(.*)", handle);
    // Errors cpp-httplib raises itself (a body over the limit, a malformed request) get
    // Firecracker's shape too.
    set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;  // cpp-httplib calls this for our own 400s too
        const int status = res.status;
        const bool over = status == 413;
        res.status = 400;
        res.set_content(over ? too_large(req.get_header_value("Content-Length"), max_payload_)
                             : "{\"fault_message\":\"Malformed request (HTTP status " +
                                   std::to_string(status) + ")\"}",
                        "application/json");
    });
}

bool RequestServer::serve_one(httplib::Stream& stream) {
    bool closed = false;
    t_close_connection = false;
    return process_request(stream, false, closed, nullptr) && !closed && !t_close_connection;
}

}  // namespace ember::api
