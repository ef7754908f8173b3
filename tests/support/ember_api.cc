#include "tests/support/ember_api.h"

#include <algorithm>

#include "core/base/folder_watch.h"

namespace ember::testing {

Result<EmberApi> EmberApi::connect(const std::string& socket_path, std::chrono::milliseconds wait,
                                   std::chrono::milliseconds call_timeout) {
    client::ClientOptions o;
    o.socket_path = socket_path;
    o.timeout = call_timeout;
    o.snapshot_timeout = call_timeout;
    client::Client c(std::move(o));
    // A starting ember has no socket yet: asked again once it links one into place.
    FolderWatch watch = FolderWatch::of(socket_path);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        auto up = c.call("GET", "/", "", std::chrono::milliseconds(1000));
        if (up) return EmberApi(std::move(c), call_timeout);
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return fail(socket_path + ": no ember answered: " + up.error().message);
        watch.wait(std::min(left, std::chrono::milliseconds(1)));
    }
}

Result<HttpReply> EmberApi::request(const std::string& method, const std::string& path,
                                    const std::string& body) {
    auto answer = client_.call(method, path, body, call_timeout_);
    EMBER_TRY(answer);
    return HttpReply{answer->status, std::move(answer->body), {}};
}

}  // namespace ember::testing
