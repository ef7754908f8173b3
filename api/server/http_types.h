// What crosses between the HTTP framing and what answers it: a request, its answer, and the one
// interface the routes implement. The framing knows nothing else of ember.
#pragma once

#include <cstddef>
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

}  // namespace ember::api
