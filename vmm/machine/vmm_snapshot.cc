// The Vmm's side of snapshots: what its paused VM is made of, for snapshot/ to write, and a VM
// rebuilt on a restore plan, its memory filled by snapshot/restore/.
#include <algorithm>

#include "core/arch/x86_64/acpi.h"
#include "core/arch/x86_64/saved_msrs.h"
#include "core/base/hex.h"
#include "core/base/log.h"
#include "core/base/phase_times.h"
#include "snapshot/restore/plan.h"
#include "snapshot/restore/restored_memory.h"
#include "snapshot/write_snapshot.h"
#include "vmm/machine/generation_id.h"
#include "vmm/machine/irq_fd.h"
#include "vmm/machine/vmm.h"

namespace ember {

Result<std::unique_ptr<Vmm>> Vmm::restore(const LoadSnapshot& load, VmmOptions options,
                                          std::optional<PreparedVm> prepared) {
    if (!prepared) {
        auto made = prepare_vm(options.kvm_path);
        EMBER_TRY(made);
        prepared = std::move(*made);
    }
    auto plan = snapshot::plan_restore(load, prepared->kvm, prepared->supported_cpuid);
    EMBER_TRY(plan);
    if (options.phases) options.phases->mark("state file");
    auto vmm = build(plan->snap.config, std::move(options), plan->mapped_fd(), std::move(prepared));
    EMBER_TRY(vmm);
    Vmm& v = **vmm;
    auto restored = snapshot::RestoredMemory::fill(*plan, v.memory_, v.options_.vmm_filter);
    EMBER_TRY(restored);
    v.restored_ = std::move(*restored);
    v.mark("memory source");
    EMBER_TRY(v.restore_state(plan->snap));
    v.mark("devices and vCPU state");
    EMBER_TRY(v.restored_->page_in(v.what_ember_touches(), v.memory_));
    EMBER_TRY(v.renew_generation_id());
    v.mark("page-in and generation ID");
    if (v.options_.pre_fault && !v.vcpus_.empty()) {
        v.restored_->pre_fault(v.kvm_, v.vcpus_.front()->vcpu(), v.memory_);
        v.mark("pre-fault");
    }
    return vmm;
}

Result<void> Vmm::restore_state(const snapshot::DecodedSnapshot& snap) {
    EMBER_TRY(restore_vm(vm_, snap.vm));
    EMBER_TRY(create_devices(snap.config));
    EMBER_TRY(snapshot::restore_devices(snap.file, persistent_devices(),
                                        state_sections::kPerDeviceKinds));
    EMBER_TRY(create_vcpus(snap.config, &snap.vcpus));
    EMBER_TRY(watch_fds());
    generation_id_ = snap.layout.generation_id;
    return {};
}

// Guest memory the VMM thread writes or reads itself as the VM starts: the new generation ID's
// page, and the rings of the live virtio queues, which the first kicks of the restored devices
// read.
std::vector<snapshot::GuestRange> Vmm::what_ember_touches() const {
    std::vector<snapshot::GuestRange> ranges;
    if (generation_id_) ranges.push_back({generation_id_->addr, x86::kVmGenIdBytes});
    for (const auto& d : virtio_)
        for (const auto& q : d.device->queue_states()) {
            if (!q.ready) continue;
            ranges.push_back({q.desc_table, uint64_t{16} * q.size});
            ranges.push_back({q.avail_ring, 6 + uint64_t{2} * q.size});
            ranges.push_back({q.used_ring, 6 + uint64_t{8} * q.size});
        }
    return ranges;
}

// After the vCPUs' LAPICs are restored, or the interrupt would be overwritten with them.
Result<void> Vmm::renew_generation_id() {
    if (!generation_id_) return {};
    EMBER_TRY(write_new_generation_id(memory_, generation_id_->addr));
    auto irq = IrqFd::create(vm_, generation_id_->gsi);
    EMBER_TRY(irq);
    (*irq)->trigger();
    irqs_.push_back(std::move(*irq));
    log::info("restore: a new VM generation ID, announced on GSI " +
              std::to_string(generation_id_->gsi));
    return {};
}

Result<snapshot::WorkingSetCounts> Vmm::record_working_set(const std::string& path) const {
    if (!restored_)
        return fail(
            "the microVM was not restored from a snapshot: a working set is what a restored VM "
            "touched after its load");
    return restored_->record_working_set(path, memory_);
}

Result<void> Vmm::save_snapshot(const std::string& state_path, const std::string& memory_path,
                                bool diff) {
    if (state_ != VmState::Paused) return fail("a snapshot can only be taken of a paused microVM");
    if (diff && !memory_.tracking_dirty())
        return fail(
            "Diff snapshots need dirty page tracking: machine-config.track_dirty_pages (or "
            "track_dirty_pages when loading a snapshot)");
    const snapshot::SnapshotTargets to{state_path, memory_path};
    EMBER_TRY(snapshot::refuse_targets(to, restored_.get()));
    auto machine = capture();
    EMBER_TRY(machine);
    return snapshot::write_snapshot(*machine, vm_, memory_, diff, to);
}

Result<snapshot::MachineState> Vmm::capture() {
    snapshot::MachineState m;
    // Requests in flight finish first, so the snapshot holds no I/O half done.
    m.devices = persistent_devices();
    for (const auto& d : m.devices) EMBER_TRY(d.device->quiesce());
    m.config = config();
    for (const auto& r : memory_.regions()) m.layout.regions.push_back({r.guest_addr, r.size()});
    m.layout.page_size = memory_.page_size();
    m.layout.generation_id = generation_id_;
    auto vm_state = capture_vm(vm_);
    EMBER_TRY(vm_state);
    m.vm = *vm_state;
    auto msrs = kvm_.msr_index_list();
    EMBER_TRY(msrs);
    if (!named_unclassified_msrs_) {
        named_unclassified_msrs_ = true;
        if (auto unknown = x86::unclassified_msrs(*msrs); !unknown.empty()) {
            std::string list;
            for (uint32_t msr : unknown) list += (list.empty() ? "" : ", ") + hex(msr);
            log::warn("snapshot: this host's KVM lists MSRs ember does not know, not saved: " +
                      list);
        }
    }
    std::vector<uint32_t> template_msrs;
    if (const auto& t = m.config.cpu_config)
        for (const auto& msr : t->msr_modifiers) template_msrs.push_back(msr.addr);
    for (size_t i = 0; i < vcpus_.size(); ++i) {
        const auto to_save = x86::msrs_to_save(*msrs, vcpu_cpuid_[i], template_msrs);
        auto s = capture_vcpu(vcpus_[i]->vcpu(), to_save, vcpu_cpuid_[i], kvm_.nested_state_size());
        EMBER_TRY(s, "vCPU " + std::to_string(i));
        m.vcpus.push_back(std::move(*s));
    }
    return m;
}

}  // namespace ember
