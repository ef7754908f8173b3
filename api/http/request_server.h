// The API's HTTP rules on cpp-httplib, apart from any socket: Firecracker's answers for what the
// HTTP layer refuses (a body over the limit, a GET with a body, a malformed request) and every
// method and path handed to one RequestHandler. The server module serves it on the Unix socket;
// the HTTP fuzz target feeds it from memory.
#pragma once

#include <httplib.h>

#include <cstddef>

#include "api/http/http_types.h"

namespace ember::api {

class RequestServer : public httplib::Server {
  public:
    RequestServer(RequestHandler& handler, size_t max_payload);

    // Reads one request from `stream` and writes its answer. False when the connection must
    // close: the client closed it, the request could not be read, or what follows the request's
    // head cannot be told from a next request.
    bool serve_one(httplib::Stream& stream);

  private:
    RequestHandler& handler_;
    size_t max_payload_;
};

}  // namespace ember::api
