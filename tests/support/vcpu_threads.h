// The thread ids of an ember process's vCPU threads, found by the names Firecracker gives them
// ("fc_vcpu N"); none when the process is gone.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace ember::testing {

inline std::vector<pid_t> vcpu_threads(pid_t pid) {
    std::vector<pid_t> found;
    std::error_code ec;
    const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
        std::ifstream comm(task.path() / "comm");
        std::string name;
        std::getline(comm, name);
        if (name.starts_with("fc_vcpu "))
            found.push_back(static_cast<pid_t>(std::stoi(task.path().filename())));
    }
    return found;
}

}  // namespace ember::testing
