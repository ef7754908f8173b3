// Where a microVM is in its life, as GET / and the metrics report it.
#pragma once

namespace ember {

enum class VmState { NotStarted, Running, Paused, Exited };

// As Firecracker spells it: "Not started", "Running", "Paused", "Exited".
constexpr const char* state_name(VmState s) {
    switch (s) {
        case VmState::NotStarted: return "Not started";
        case VmState::Running: return "Running";
        case VmState::Paused: return "Paused";
        case VmState::Exited: return "Exited";
    }
    return "Unknown";
}

}  // namespace ember
