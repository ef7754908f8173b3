// api/routes: Firecracker's REST API (pinned: the v1.7.0 swagger) as ember serves it. The router
// runs on the HTTP server's connection threads: it parses and checks a request, hands a typed
// action to the VMM through vmm/actions.h (the Controller runs it on the VMM thread) or reads a
// copy for a GET, and answers with Firecracker's status codes: 204 with no body, 200 with JSON,
// 400 with {"fault_message": ...}.
#pragma once

#include <array>
#include <atomic>
#include <string>

#include "api/http/http_types.h"
#include "vmm/actions.h"

namespace ember::api {

inline constexpr const char* kPinnedFirecrackerVersion = "1.7.0";

class Router : public RequestHandler {
  public:
    explicit Router(ActionSink& vmm) : vmm_(vmm) {}
    HttpResponse handle(const HttpRequest& request) override;

    // {"put_api_requests": N, ...} for the metrics.
    std::string metrics_json() const;

  private:
    HttpResponse checked_route(const HttpRequest& request);
    HttpResponse route(const HttpRequest& request);
    static void log_received(const HttpRequest& request);
    static void log_outcome(const HttpResponse& response);

    ActionSink& vmm_;
    std::atomic<uint64_t> get_requests_{0}, put_requests_{0}, patch_requests_{0},
        failed_requests_{0};
    std::atomic<uint64_t> total_latency_us_{0};
};

}  // namespace ember::api
