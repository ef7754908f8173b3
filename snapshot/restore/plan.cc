#include "snapshot/restore/plan.h"

#include <fcntl.h>

#include <algorithm>

#include "core/arch/x86_64/cpu_fit.h"
#include "core/arch/x86_64/saved_msrs.h"
#include "core/base/atomic_file.h"
#include "core/base/file_io.h"
#include "core/base/log.h"
#include "core/base/open_file.h"
#include "snapshot/cpu_fit.h"

namespace ember::snapshot {
namespace {

// The snapshot's configuration as the load asks for it: other taps, dirty tracking; and its
// memory's page size, which the layout keeps. Checked again when it changes, since two overrides
// may name one tap.
Result<ValidVmConfig> with_load_options(ValidVmConfig config,
                                        const std::vector<NetworkOverride>& network_overrides,
                                        bool track_dirty_pages, uint64_t page_size) {
    const HugePages pages = page_size == kHugePageSize ? HugePages::Size2M : HugePages::None;
    if (network_overrides.empty() && !track_dirty_pages && pages == HugePages::None) return config;
    VmConfig changed = config;
    changed.machine.huge_pages = pages;
    for (const auto& o : network_overrides) {
        auto it = std::find_if(changed.network_interfaces.begin(), changed.network_interfaces.end(),
                               [&](const auto& n) { return n.iface_id == o.iface_id; });
        if (it == changed.network_interfaces.end())
            return fail("network_overrides: the snapshot has no network interface '" + o.iface_id +
                        "'");
        it->host_dev_name = o.host_dev_name;
    }
    if (track_dirty_pages) changed.machine.track_dirty_pages = true;
    return ValidVmConfig::check(std::move(changed));
}

// Checked before the VM's memory and devices are built: a guest given a CPU feature, an XSAVE
// component or an MSR that this host's KVM does not offer is refused here, with what is missing
// named, rather than by KVM halfway through the load (an MSR) or by the guest's first use of an
// instruction that is gone (SIGILL, long after the load said yes). Another vendor is said, not
// refused: KVM runs it. MSRs at 0 that this KVM has no state for are left out (cpu_fit.h).
Result<void> fit_to_host(DecodedSnapshot& snap, const Kvm& kvm,
                         std::span<const kvm_cpuid_entry2> supported_cpuid) {
    auto host_msrs = kvm.msr_index_list();
    EMBER_TRY(host_msrs);
    const auto all = cpu_shortfall(snap.vcpus, supported_cpuid, *host_msrs);
    if (!all.empty()) return fail(x86::describe(all));
    const std::string pending = pending_exception_misfit(snap.vcpus, kvm.exception_payload());
    if (!pending.empty()) return fail(pending);
    for (VcpuState& v : snap.vcpus)
        std::erase_if(v.msrs, [&](const auto& m) { return x86::not_restored(m, *host_msrs); });
    if (!snap.vcpus.empty()) {
        const std::string was = x86::cpu_vendor(snap.vcpus.front().cpuid);
        const std::string here = x86::cpu_vendor(supported_cpuid);
        if (was != here)
            log::warn("restore: the snapshot's guest was given a " + was +
                      " CPU and this host is " + here +
                      "; every feature it was given is here, but its kernel chose paths "
                      "for the other vendor");
    }
    return {};
}

// The memory file must hold every byte the layout says: a shorter one would SIGBUS ember the
// first time the guest touched a page past its end.
Result<UniqueFd> open_memory_file(const std::string& path, uint64_t expected) {
    auto opened = open_file(path, O_RDONLY);
    EMBER_TRY(opened, "mem_file_path " + path);
    auto size = file_size(opened->get());
    EMBER_TRY(size, "mem_file_path " + path);
    if (*size != expected)
        return fail("mem_file_path " + path + ": " + std::to_string(*size) +
                    " bytes, but the snapshot's VM has " + std::to_string(expected) +
                    " bytes of memory");
    return std::move(*opened);
}

}  // namespace

int RestorePlan::mapped_fd() const {
    const auto* file = std::get_if<MappedFile>(&memory);
    return file ? file->fd.get() : -1;
}

Result<RestorePlan> plan_restore(const LoadSnapshot& load, const Kvm& kvm,
                                 std::span<const kvm_cpuid_entry2> supported_cpuid) {
    const std::string& state_path = load.snapshot_path;
    const std::string& memory_path = load.memory().backend_path;
    // A create killed between its renames left the memory file of a newer pair beside the state
    // file of the older: put back, the older pair loads whole (atomic_file.h).
    if (!load.uffd()) AtomicFile::recover_pair(memory_path, state_path);
    auto snap = read_snapshot(state_path);
    EMBER_TRY(snap, "snapshot_path " + state_path);
    if (snap->from_store)
        for (const auto& n : snap->config->network_interfaces)
            if (std::none_of(load.network_overrides.begin(), load.network_overrides.end(),
                             [&](const auto& o) { return o.iface_id == n.iface_id; }))
                return fail(
                    "network_overrides: the snapshot came from a store, whose tap names "
                    "are not this host's: name the tap of interface '" +
                    n.iface_id + "'");
    auto config = with_load_options(std::move(snap->config), load.network_overrides,
                                    load.track_dirty_pages, snap->layout.page_size);
    EMBER_TRY(config);
    snap->config = std::move(*config);
    EMBER_TRY(fit_to_host(*snap, kvm, supported_cpuid), "snapshot_path " + state_path);
    // Checked before anything is built: a working set that does not fit stops the load.
    std::optional<WorkingSet> working_set;
    if (load.working_set_path) {
        const std::string field = "working_set_path " + *load.working_set_path;
        auto ws = open_file(*load.working_set_path, O_RDONLY);
        EMBER_TRY(ws, field);
        auto set = read_working_set(ws->get(), snap->identity);
        EMBER_TRY(set, field);
        working_set = std::move(*set);
    }
    auto plan = [&](MemorySource memory) {
        return RestorePlan{std::move(*snap), std::move(memory), std::move(working_set),
                           load.working_set_path.value_or("")};
    };
    if (load.uffd()) return plan(PageFaultHandler{memory_path});
    auto fd = open_memory_file(memory_path, snap->identity.memory_bytes);
    EMBER_TRY(fd);
    if (snap->layout.page_size == kGuestPageSize)
        return plan(MappedFile{std::move(*fd), memory_path});
    if (working_set)
        return fail("working_set_path " + *load.working_set_path +
                    ": the snapshot's VM is on huge pages, which a load from the memory file reads "
                    "whole; a working set has nothing to add");
    return plan(HugePageCopy{std::move(*fd), memory_path});
}

}  // namespace ember::snapshot
