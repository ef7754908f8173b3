// The thread ids of an ember process's threads by name: its vCPU threads by the names Firecracker
// gives them ("fc_vcpu N"), its API thread ("ember_api"); none when the process is gone.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace ember::testing {

inline std::vector<pid_t> threads_named(pid_t pid, const std::string& prefix) {
    std::vector<pid_t> found;
    std::error_code ec;
    const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
        std::ifstream comm(task.path() / "comm");
        std::string name;
        std::getline(comm, name);
        if (name.starts_with(prefix))
            found.push_back(static_cast<pid_t>(std::stoi(task.path().filename())));
    }
    return found;
}

inline std::vector<pid_t> vcpu_threads(pid_t pid) {
    return threads_named(pid, "fc_vcpu ");
}

}  // namespace ember::testing
