// What a paused VM is made of, as KVM keeps it: each vCPU's registers, FPU/XSAVE, MSRs, LAPIC and
// events, and the VM's PIC, IOAPIC, PIT and clock. Captured with every vCPU stopped (the pause
// protocol completes any pending PIO/MMIO first) and put back in an order KVM accepts.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/base/persistent.h"
#include "core/kvm/kvm_abi.h"
#include "core/kvm/vcpu.h"
#include "core/kvm/vm.h"
#include "core/memory/guest_memory.h"
#include "snapshot/format.h"

namespace ember::snapshot {

// The machine-wide sections' ids (core/base/state_sections.h).
inline constexpr uint32_t kConfig = state_sections::kConfig.id, kVmKvm = state_sections::kVmKvm.id,
                          kVcpu = state_sections::kVcpu.id, kMemory = state_sections::kMemory.id;

struct VcpuState {
    std::vector<kvm_cpuid_entry2> cpuid;
    uint32_t tsc_khz = 0;
    kvm_regs regs{};
    kvm_sregs sregs{};
    kvm_abi::Xsave xsave{};
    kvm_xcrs xcrs{};
    std::vector<kvm_msr_entry> msrs;
    kvm_lapic_state lapic{};
    kvm_mp_state mp_state{};
    kvm_vcpu_events events{};
    kvm_debugregs debugregs{};
};

struct VmKvmState {
    kvm_irqchip pic_master{}, pic_slave{}, ioapic{};
    kvm_pit_state2 pit{};
    kvm_clock_data clock{};
};

// The memory file's layout: guest regions back to back from offset 0. Version 2 adds where the
// guest was told (through ACPI) its generation ID lives and which interrupt announces a new one; a
// version 1 section, from before ember wrote ACPI tables, has none. Version 3 adds the size of the
// pages guest memory was mapped with (machine-config.huge_pages); before it, 4 KiB.
inline constexpr uint32_t kMemoryLayoutVersion = state_sections::kMemory.version;
struct GenerationIdPlace {
    uint64_t addr;
    uint32_t gsi;
};
struct MemoryLayout {
    std::vector<MemoryRegionSpec> regions;
    std::optional<GenerationIdPlace> generation_id;
    uint64_t page_size = kGuestPageSize;
    uint64_t total() const;
};

Result<VcpuState> capture_vcpu(const Vcpu& vcpu, std::span<const uint32_t> msr_indices,
                               std::vector<kvm_cpuid_entry2> cpuid);
// With `cpuid_in_place`, the vCPU already has the state's CPUID and is not given it again.
Result<void> restore_vcpu(const Vcpu& vcpu, const VcpuState& state, bool cpuid_in_place = false);
Result<VmKvmState> capture_vm(const Vm& vm);
Result<void> restore_vm(const Vm& vm, const VmKvmState& state);

std::vector<uint8_t> encode(const VcpuState& s);
Result<VcpuState> decode_vcpu(std::span<const uint8_t> payload);
std::vector<uint8_t> encode(const VmKvmState& s);
Result<VmKvmState> decode_vm(std::span<const uint8_t> payload);
std::vector<uint8_t> encode(const MemoryLayout& m);
Result<MemoryLayout> decode_memory(std::span<const uint8_t> payload, uint32_t version);

}  // namespace ember::snapshot
