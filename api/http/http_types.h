// What crosses between ember and its HTTP server module (libember_api_http.so, loaded only when
// the API is served).
// Plain structs and one interface each way; the module knows nothing else of ember.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace ember::api {

struct HttpRequest {
    std::string method;
    std::string path;
    std::string body;
};

struct HttpResponse {
    int status = 204;
    std::string body;         // JSON; empty for 204
    bool deprecated = false;  // the request used a deprecated field: "Deprecation: true"
};

class RequestHandler {
  public:
    virtual ~RequestHandler() = default;
    // Called on the server's thread, one request at a time.
    virtual HttpResponse handle(const HttpRequest& request) = 0;
};

class HttpServer {
  public:
    // Stops serving, closes every connection and removes the socket file.
    virtual ~HttpServer() = default;
};

struct HttpServerOptions {
    std::string socket_path;  // removed when the server stops
    int listen_fd = -1;       // already listening on socket_path; the server takes it
    size_t max_payload = 51200;
    RequestHandler* handler = nullptr;
    // Run first on the server's thread, before it accepts anyone (ember installs the API
    // thread's seccomp filter there); the threads it starts for connections inherit what it does.
    // false: the server accepts nobody.
    std::function<bool()> on_thread_start;
    // Called on the server's thread with what went wrong that the server rides out (accept
    // errors, at most one line every 10 s): ember logs it.
    std::function<void(const std::string&)> on_warning;
    // Called on the server's thread when it cannot go on serving (its event loop failed): ember
    // stops, rather than run on with no API and nobody told.
    std::function<void(const std::string&)> on_failure;
};

// The module's entry point; returns null with `error` set on failure. The caller owns the result.
using StartHttpServer = HttpServer* (*)(const HttpServerOptions& options, std::string& error);
inline constexpr const char* kStartHttpServerSymbol = "ember_api_http_start";

}  // namespace ember::api
