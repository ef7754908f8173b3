// api/server: Firecracker's REST API (pinned: the v1.7.0 swagger) as ember serves it. The router
// runs on the API thread: it parses and checks a request, hands a typed
// action to the VMM through core/actions.h (the Controller runs it on the VMM thread) or reads a
// copy for a GET, and answers with Firecracker's status codes: 204 with no body, 200 with JSON,
// 400 with {"fault_message": ...}.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "api/server/http_types.h"
#include "core/actions.h"
#include "core/base/metrics.h"

namespace ember::api {

inline constexpr const char* kPinnedFirecrackerVersion = "1.7.0";

class Router : public RequestHandler {
  public:
    explicit Router(ActionSink& vmm) : vmm_(vmm) {}
    HttpResponse handle(const HttpRequest& request) override;

    // Firecracker's get_api_requests, put_api_requests, patch_api_requests and deprecated_api
    // groups: requests per endpoint so far, and the failed ones for PUT and PATCH.
    std::vector<metrics::Group> metrics() const;

  private:
    HttpResponse checked_route(const HttpRequest& request);
    HttpResponse route(const HttpRequest& request);
    static void log_received(const HttpRequest& request);
    static void log_outcome(const HttpResponse& response);

    void count(const HttpRequest& request, const HttpResponse& response);

    ActionSink& vmm_;
    mutable std::mutex counts_mutex_;
    std::map<std::string, uint64_t> counts_;  // "put_api_requests.drive_fails" -> N
};

}  // namespace ember::api
