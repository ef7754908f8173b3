// A QMP connection to QEMU, for the benchmarks that run it as their peer: connects (retrying
// while QEMU starts), reads the greeting and negotiates capabilities; then one command at a time.
#pragma once

#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::testing {

class QmpClient {
  public:
    static Result<QmpClient> connect(const std::string& path, int timeout_ms);

    // Sends `command` (one JSON object) and returns its reply line, skipping events; an error
    // when QEMU closed the connection or did not reply within `timeout_ms`.
    Result<std::string> call(const std::string& command, int timeout_ms = 60000);

  private:
    explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}
    Result<std::string> line(int timeout_ms);

    UniqueFd fd_;
    std::string buffered_;
};

}  // namespace ember::testing
