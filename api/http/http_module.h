// Loads libember_api_http.so from beside the ember binary and starts the API server with it.
#pragma once

#include <memory>

#include "api/http/http_types.h"
#include "vmm/base/error.h"

namespace ember::api {

Result<std::unique_ptr<HttpServer>> start_http_server(const HttpServerOptions& options);

}  // namespace ember::api
