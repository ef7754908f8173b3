// Whether a snapshot's vCPUs, as saved, can go on on this host (core/arch/x86_64/cpu_fit.h, over
// every vCPU): what a load checks before it builds anything, and what ember-snapshot-info
// --check-host tells before a host agent sends the state file anywhere.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/arch/x86_64/cpu_fit.h"
#include "core/kvm/vcpu_state.h"

namespace ember::snapshot {

// `host`: KVM_GET_SUPPORTED_CPUID here; `host_msrs`: KVM_GET_MSR_INDEX_LIST here. Each name once.
x86::CpuShortfall cpu_shortfall(std::span<const VcpuState> vcpus,
                                std::span<const kvm_cpuid_entry2> host,
                                std::span<const uint32_t> host_msrs);

// Why a vCPU paused with an exception pending cannot be loaded where KVM lacks
// KVM_CAP_EXCEPTION_PAYLOAD (`exception_payload`: whether this host's KVM has it); empty where
// nothing stands in the way.
std::string pending_exception_misfit(std::span<const VcpuState> vcpus, bool exception_payload);

}  // namespace ember::snapshot
