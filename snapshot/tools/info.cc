// ember-snapshot-info STATE_FILE: what a snapshot state file holds, for humans.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "core/base/state_sections.h"
#include "snapshot/config_section.h"
#include "snapshot/devices.h"
#include "snapshot/machine_state.h"

using namespace ember;

namespace {

int describe(const char* path) {
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
    if (auto m = file->one(snapshot::kMemory)) {
        if (auto layout = snapshot::decode_memory(m->payload, m->version))
            std::printf("memory: %zu regions, %llu KiB pages\n", layout->regions.size(),
                        static_cast<unsigned long long>(layout->page_size >> 10));
    }
    int i = 0;
    for (const auto& s : file->all(snapshot::kVcpu)) {
        auto v = snapshot::decode_vcpu(s.payload);
        if (!v) continue;
        using ull = unsigned long long;
        const ull xcr0 = v->xcrs.nr_xcrs ? v->xcrs.xcrs[0].value : 0;
        std::printf("vCPU %d: rip %#llx, mp_state %u, cr0 %#llx, efer %#llx, xcr0 %#llx\n", i++,
                    static_cast<ull>(v->regs.rip), v->mp_state.mp_state,
                    static_cast<ull>(v->sregs.cr0), static_cast<ull>(v->sregs.efer), xcr0);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: ember-snapshot-info STATE_FILE\n");
        return 2;
    }
    // Whatever a file holds, the tool answers with a message and an exit code, never an abort.
    try {
        return describe(argv[1]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ember-snapshot-info: %s: %s\n", argv[1], e.what());
        return 1;
    }
}
