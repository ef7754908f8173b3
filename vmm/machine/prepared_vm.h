// A KVM VM made before its configuration is known: what every microVM needs whatever it turns out
// to be (the VM with its in-kernel irqchip and PIT, the host's CPUID, vCPU 0), so that an ember
// waiting on its API spends InstanceStart or PUT /snapshot/load only on what the configuration or
// the snapshot asks for. The Vmm takes it whole (Vmm::create, Vmm::restore) and adds the memory,
// the devices and the other vCPUs.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/kvm/kvm.h"
#include "core/kvm/vm.h"

namespace ember {

// vCPU 0, which every VM has, already given the CPUID of a VM with one vCPU (Firecracker's
// default): a VM that wants exactly that, booted or restored on this host, skips the
// KVM_SET_CPUID2 (120-180 us measured here), and any other sets its own over it before it runs.
struct ReadyVcpu {
    Vcpu vcpu;
    std::vector<kvm_cpuid_entry2> cpuid;
};

struct PreparedVm {
    Kvm kvm;
    Vm vm;
    std::vector<kvm_cpuid_entry2> supported_cpuid;
    std::optional<ReadyVcpu> boot_vcpu;
    std::chrono::microseconds took{};
};

bool same_cpuid(std::span<const kvm_cpuid_entry2> a, std::span<const kvm_cpuid_entry2> b);

// The VM has no memory slot yet: the Vmm registers guest memory once it knows its size.
Result<PreparedVm> prepare_vm(const std::string& kvm_path);

// What a VM needs before any memory or vCPU: the pages in the MMIO gap that the CPU's
// virtualisation uses for real-mode emulation, the in-kernel irqchip and the PIT.
Result<void> create_platform(const Vm& vm);

}  // namespace ember
