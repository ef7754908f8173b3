#include "api/http/http_module.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <string>

namespace ember::api {

Result<std::unique_ptr<HttpServer>> start_http_server(const HttpServerOptions& options) {
    char exe[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) return fail_errno("/proc/self/exe");
    std::string dir(exe, static_cast<size_t>(n));
    dir.resize(dir.rfind('/') + 1);
    const std::string path = dir + "libember_api_http.so";
    // Never unloaded: the server's code must outlive the server.
    void* module = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (module == nullptr) return fail("the API server module: " + std::string(::dlerror()));
    auto start = reinterpret_cast<StartHttpServer>(::dlsym(module, kStartHttpServerSymbol));
    if (start == nullptr) return fail(path + ": no " + kStartHttpServerSymbol);
    std::string error;
    HttpServer* server = start(options, error);
    if (server == nullptr) return fail(error);
    return std::unique_ptr<HttpServer>(server);
}

}  // namespace ember::api
