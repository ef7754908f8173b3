// What threads other than the VMM thread may read of a VM: a copy of its configuration and its
// state, which the VM's owner on the VMM thread replaces after each change (the configuration
// being built before boot, then the Vmm's after it starts, pauses, resumes, is updated or ends).
// GET /vm/config and GET / read it without waiting for the VMM thread.
#pragma once

#include <atomic>
#include <mutex>

#include "core/config/vm_config.h"
#include "core/config/vm_state.h"

namespace ember {

class PublishedVm {
  public:
    void publish(const VmConfig& config, VmState state) {
        {
            std::lock_guard lock(mutex_);
            config_ = config;
        }
        state_.store(state);
    }
    void publish(VmState state) { state_.store(state); }

    VmConfig config() const {
        std::lock_guard lock(mutex_);
        return config_;
    }
    VmState state() const { return state_.load(); }

  private:
    mutable std::mutex mutex_;
    VmConfig config_;
    std::atomic<VmState> state_{VmState::NotStarted};
};

}  // namespace ember
