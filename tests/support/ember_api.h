// How the tests and benchmarks drive an ember's API when HTTP itself is not what they test:
// through ember's client library (api/client, on cpp-httplib), a request written as its JSON and
// the answer's status and body. uds_http.h stays for the tests of the server's HTTP framing.
#pragma once

#include <chrono>
#include <string>

#include "api/client/client.h"
#include "core/base/error.h"
#include "tests/support/ember_process.h"
#include "tests/support/uds_http.h"

namespace ember::testing {

class EmberApi {
  public:
    // Once the ember at `socket_path` answers GET /, tried until `wait` has passed; each call is
    // then bounded by `call_timeout`.
    static Result<EmberApi> connect(const std::string& socket_path,
                                    std::chrono::milliseconds wait = kFailsafe,
                                    std::chrono::milliseconds call_timeout = kFailsafe);

    // The answer, whatever its status; an error only when none came.
    Result<HttpReply> request(const std::string& method, const std::string& path,
                              const std::string& body = "");

  private:
    EmberApi(client::Client c, std::chrono::milliseconds call_timeout)
        : client_(std::move(c)), call_timeout_(call_timeout) {}

    client::Client client_;
    std::chrono::milliseconds call_timeout_;
};

}  // namespace ember::testing
