// ember-snapshot-info [--check-host] STATE_FILE: what a snapshot state file holds, for humans.
// --check-host also tells whether this host's KVM can give the guest its CPU, as a load checks it,
// and exits 3 when it cannot.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "core/arch/x86_64/cpu_fit.h"
#include "core/base/hex.h"
#include "core/base/state_sections.h"
#include "core/kvm/kvm.h"
#include "snapshot/config_section.h"
#include "snapshot/cpu_fit.h"
#include "snapshot/cpu_template_section.h"
#include "snapshot/devices.h"
#include "snapshot/machine_state.h"

using namespace ember;

namespace {

constexpr int kDoesNotFit = 3;

// Whether a load of these vCPUs here would pass the CPU check; the exit code.
int check_host(const std::vector<VcpuState>& vcpus) {
    auto kvm = Kvm::open();
    auto cpuid = kvm ? kvm->supported_cpuid() : Result<std::vector<kvm_cpuid_entry2>>(fail(""));
    auto msrs = kvm ? kvm->msr_index_list() : Result<std::vector<uint32_t>>(fail(""));
    if (!kvm || !cpuid || !msrs) {
        std::fprintf(stderr, "ember-snapshot-info: --check-host: %s\n",
                     (!kvm     ? kvm.error()
                      : !cpuid ? cpuid.error()
                               : msrs.error())
                         .message.c_str());
        return 1;
    }
    const std::string here = x86::cpu_vendor(*cpuid);
    const auto s = snapshot::cpu_shortfall(vcpus, *cpuid, *msrs);
    if (!s.empty()) {
        std::printf("this host (%s): cannot load it: %s\n", here.c_str(), x86::describe(s).c_str());
        return kDoesNotFit;
    }
    const std::string pending = snapshot::pending_exception_misfit(vcpus, kvm->exception_payload());
    if (!pending.empty()) {
        std::printf("this host (%s): cannot load it: %s\n", here.c_str(), pending.c_str());
        return kDoesNotFit;
    }
    std::printf("this host (%s): the guest's CPU fits\n", here.c_str());
    return 0;
}

int describe(const char* path, bool check) {
    auto read = snapshot::read_state_file(path);
    if (!read) {
        std::fprintf(stderr, "ember-snapshot-info: %s: %s\n", path, read.error().message.c_str());
        return 1;
    }
    const std::vector<uint8_t>& bytes = *read;
    auto file = snapshot::Reader::parse(bytes, state_sections::kAll);
    if (!file) {
        std::fprintf(stderr, "ember-snapshot-info: %s: %s\n", path, file.error().message.c_str());
        return 1;
    }
    std::printf("%s: ember snapshot, format version %u, %zu bytes\n", path, file->format_version(),
                bytes.size());
    const bool tagged = file->format_version() >= snapshot::kFirstTaggedFormat;
    for (const auto& s : file->sections()) {
        std::string of;
        if (tagged && state_sections::kind_of(s.id).per_device)
            if (auto split = snapshot::split_device_section(s.payload))
                of = ": " + snapshot::describe(split->tag);
        std::printf("  section %-30s version %u, %zu bytes%s\n",
                    std::string(state_sections::name_of(s.id)).c_str(), s.version, s.payload.size(),
                    of.c_str());
    }
    if (auto c = file->one(snapshot::kConfig)) {
        if (auto valid = snapshot::decode_config(c->payload, c->version)) {
            const VmConfig* config = &valid->get();
            std::printf("machine: %u vCPUs, %u MiB\n", config->machine.vcpu_count,
                        config->machine.mem_size_mib);
            if (config->boot_source)
                std::printf("kernel: %s\n", config->boot_source->kernel_image_path.c_str());
            for (const auto& d : config->drives)
                std::printf("drive %s: %s%s%s\n", d.drive_id.c_str(), d.path_on_host.c_str(),
                            d.is_root_device ? " (root)" : "",
                            d.is_read_only ? " (read-only)" : "");
            for (const auto& n : config->network_interfaces)
                std::printf("network interface %s: tap %s\n", n.iface_id.c_str(),
                            n.host_dev_name.c_str());
        }
    }
    for (const auto& s : file->all(state_sections::kCpuTemplate.id)) {
        auto t = snapshot::decode_cpu_template(s.payload);
        if (!t) {
            std::printf("CPU template: %s\n", t.error().message.c_str());
            continue;
        }
        std::printf(
            "CPU template: custom, %zu CPUID leaves and %zu MSRs it sets, %zu KVM "
            "capabilities\n",
            t->cpuid_modifiers.size(), t->msr_modifiers.size(), t->kvm_capabilities.size());
    }
    if (auto m = file->one(snapshot::kMemory)) {
        if (auto layout = snapshot::decode_memory(m->payload, m->version))
            std::printf("memory: %zu regions, %llu KiB pages\n", layout->regions.size(),
                        static_cast<unsigned long long>(layout->page_size >> 10));
    }
    std::vector<VcpuState> vcpus;
    for (const auto& s : file->all(snapshot::kVcpu)) {
        auto v = snapshot::decode_vcpu(s.payload, s.version);
        if (!v) {
            std::fprintf(stderr, "ember-snapshot-info: %s: vCPU %zu: %s\n", path, vcpus.size(),
                         v.error().message.c_str());
            return 1;
        }
        using ull = unsigned long long;
        std::printf(
            "vCPU %zu: rip %#llx, mp_state %u, cr0 %#llx, efer %#llx, xcr0 %#llx; CPU vendor %s, "
            "%zu "
            "CPUID entries, %zu MSRs\n",
            vcpus.size(), static_cast<ull>(v->regs.rip), v->mp_state.mp_state,
            static_cast<ull>(v->sregs.cr0), static_cast<ull>(v->sregs.efer),
            static_cast<ull>(saved_xcr0(*v)), x86::cpu_vendor(v->cpuid).c_str(), v->cpuid.size(),
            v->msrs.size());
        std::string msrs;
        for (const auto& m : v->msrs) msrs.append(" ").append(hex32(m.index));
        std::printf("  MSRs:%s\n", msrs.c_str());
        if (!v->nested.empty()) {
            kvm_nested_state h{};
            std::memcpy(&h, v->nested.data(), sizeof h);
            std::printf("  nested virtualization state: %s, flags %#x, %zu bytes\n",
                        h.format == KVM_STATE_NESTED_FORMAT_SVM ? "SVM" : "VMX",
                        static_cast<unsigned>(h.flags), v->nested.size());
        }
        vcpus.push_back(std::move(*v));
    }
    return check ? check_host(vcpus) : 0;
}

}  // namespace

int main(int argc, char** argv) {
    const bool check = argc == 3 && std::strcmp(argv[1], "--check-host") == 0;
    if (argc != 2 + (check ? 1 : 0)) {
        std::fprintf(stderr, "usage: ember-snapshot-info [--check-host] STATE_FILE\n");
        return 2;
    }
    const char* path = argv[argc - 1];
    // Whatever a file holds, the tool answers with a message and an exit code, never an abort.
    try {
        return describe(path, check);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ember-snapshot-info: %s: %s\n", path, e.what());
        return 1;
    }
}
