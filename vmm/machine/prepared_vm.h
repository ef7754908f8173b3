// A KVM VM made before its configuration is known, so that an ember waiting on its API spends
// InstanceStart or PUT /snapshot/load only on what the configuration or the snapshot asks for. It
// comes in two steps:
// - prepare_vm(): the VM and the host's CPUID, at once;
// - add_platform(): the in-kernel irqchip and PIT, vCPU 0, which every VM has, and guest memory of
//   Firecracker's default size in its KVM slot (PreparedVm::memory). Not at once:
//   on some hosts (a 6.18 kernel with a paravirtual KVM) the irqchip starts an SRCU grace period
//   that the first KVM_SET_USER_MEMORY_REGION after it waits out, 4-11 ms measured against
//   0.1-0.2 ms once it is over, so a VM whose memory comes soon after is better off with its
//   memory first and its irqchip after, as one made from nothing has them. add_platform()'s own
//   memory slot waits the period out. Debian 12's 6.1 KVM shows no such wait.
// The Vmm takes it whole (Vmm::create, Vmm::restore) and adds what is missing.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/kvm/kvm.h"
#include "core/kvm/vm.h"
#include "core/memory/guest_memory.h"

namespace ember {

// vCPU 0 given the CPUID of a VM with one vCPU (Firecracker's default): a VM that wants exactly
// that, booted or restored on this host, skips the KVM_SET_CPUID2 (120-180 us measured here), and
// any other sets its own over it before it runs.
struct ReadyVcpu {
    Vcpu vcpu;
    std::vector<kvm_cpuid_entry2> cpuid;
    std::optional<uint32_t> tsc_khz;  // its TSC rate, the VM's, read while it waits
};

// The size of PreparedVm::memory: Firecracker's default, unless --ready-memory-mib says otherwise.
inline constexpr uint64_t kReadyMemoryBytes = uint64_t{128} << 20;

struct PreparedVm {
    Kvm kvm;
    Vm vm;
    std::vector<kvm_cpuid_entry2> supported_cpuid;
    std::optional<ReadyVcpu> boot_vcpu;  // there once the platform is
    // Guest memory made ahead (one region at 0, as GuestMemory::create_anonymous makes it), in
    // KVM as slot 0: a VM of its size, booted or restored, takes it (its memory file mapped over
    // it) rather than putting a slot in. A slot costs KVM_SET_USER_MEMORY_REGION 190-250 us on a
    // paravirtual KVM whose shadow paging sizes per-page metadata for it (perf/density, the load
    // by phase); a VM of any other size takes this one out first (60-80 us there). There once
    // the platform is, where it could be made.
    std::optional<GuestMemory> memory;

    bool has_platform() const { return boot_vcpu.has_value(); }
};

bool same_cpuid(std::span<const kvm_cpuid_entry2> a, std::span<const kvm_cpuid_entry2> b);

// The VM has no memory slot and no platform yet.
Result<PreparedVm> prepare_vm(const std::string& kvm_path);
// The platform, vCPU 0 and, where it can be made, `memory_bytes` of memory made ahead (none for
// 0).
Result<void> add_platform(PreparedVm& prepared, uint64_t memory_bytes = kReadyMemoryBytes);

// The memory made ahead as the VM's `regions` of `page_size` pages, the memory file `memory_fd`
// mapped over it (anonymous where it is -1), when they are what it was made for; nothing
// otherwise, its slot taken out. The prepared VM has no memory made ahead after it either way.
Result<std::optional<GuestMemory>> take_ready_memory(PreparedVm& prepared,
                                                     std::span<const MemoryRegionSpec> regions,
                                                     uint64_t page_size, int memory_fd);

// What a VM needs before any vCPU: the pages in the MMIO gap that the CPU's virtualisation uses
// for real-mode emulation, the in-kernel irqchip and the PIT.
Result<void> create_platform(const Vm& vm);

}  // namespace ember
