#include "tests/support/ember_api.h"

#include <thread>

namespace ember::testing {

Result<EmberApi> EmberApi::connect(const std::string& socket_path, std::chrono::milliseconds wait,
                                   std::chrono::milliseconds call_timeout) {
    client::ClientOptions o;
    o.socket_path = socket_path;
    o.timeout = call_timeout;
    o.snapshot_timeout = call_timeout;
    client::Client c(std::move(o));
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        // A starting ember has no socket yet, or does not accept on it yet: asked again shortly.
        auto up = c.call("GET", "/", "", std::chrono::milliseconds(1000));
        if (up) return EmberApi(std::move(c), call_timeout);
        if (std::chrono::steady_clock::now() >= deadline)
            return fail(socket_path + ": no ember answered: " + up.error().message);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

Result<HttpReply> EmberApi::request(const std::string& method, const std::string& path,
                                    const std::string& body) {
    auto answer = client_.call(method, path, body, call_timeout_);
    EMBER_TRY(answer);
    return HttpReply{answer->status, std::move(answer->body), {}};
}

}  // namespace ember::testing
