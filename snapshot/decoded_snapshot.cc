#include "snapshot/decoded_snapshot.h"

#include "snapshot/config_section.h"
#include "snapshot/cpu_template_section.h"

namespace ember::snapshot {

Result<DecodedSnapshot> read_snapshot(const std::string& path) {
    auto bytes = read_state_file(path);
    EMBER_TRY(bytes);
    return decode_snapshot(std::move(*bytes));
}

Result<DecodedSnapshot> decode_snapshot(std::vector<uint8_t> bytes) {
    DecodedSnapshot s;
    s.bytes = std::move(bytes);
    auto file = Reader::parse(std::span<const uint8_t>(s.bytes), state_sections::kAll);
    EMBER_TRY(file);
    s.file = std::move(*file);
    auto config_section = s.file.one(kConfig);
    EMBER_TRY(config_section);
    auto config = decode_config(config_section->payload, config_section->version);
    EMBER_TRY(config);
    s.config = std::move(*config);
    if (auto t = s.file.all(state_sections::kCpuTemplate.id); !t.empty()) {
        if (t.size() > 1) return fail("more than one cpu template section");
        auto booted_under = decode_cpu_template(t.front().payload);
        EMBER_TRY(booted_under);
        VmConfig with = s.config;
        with.cpu_config = std::move(*booted_under);
        auto checked = ValidVmConfig::check(std::move(with));
        EMBER_TRY(checked);
        s.config = std::move(*checked);
    }
    auto layout_section = s.file.one(kMemory);
    EMBER_TRY(layout_section);
    auto layout = decode_memory(layout_section->payload, layout_section->version);
    EMBER_TRY(layout);
    s.layout = std::move(*layout);
    auto vm_section = s.file.one(kVmKvm);
    EMBER_TRY(vm_section);
    auto vm = decode_vm(vm_section->payload);
    EMBER_TRY(vm);
    s.vm = *vm;
    for (const auto& section : s.file.all(kVcpu)) {
        auto v = decode_vcpu(section.payload, section.version);
        EMBER_TRY(v);
        s.vcpus.push_back(std::move(*v));
    }
    const MachineConfig& machine = s.config->machine;
    if (s.vcpus.size() != machine.vcpu_count)
        return fail("snapshot has " + std::to_string(s.vcpus.size()) + " vCPU sections for " +
                    std::to_string(machine.vcpu_count) + " vCPUs");
    const uint64_t memory = uint64_t{machine.mem_size_mib} << 20;
    if (s.layout.total() != memory)
        return fail("its memory layout has " + std::to_string(s.layout.total()) +
                    " bytes for a VM of " + std::to_string(memory));
    s.identity = {closing_checksum(s.bytes), memory};
    if (auto marks = s.file.all(state_sections::kFromStore.id); !marks.empty()) {
        if (marks.size() > 1) return fail("more than one 'from a store' section");
        auto empty = check_from_store_mark(marks.front().payload);
        EMBER_TRY(empty);
        s.from_store = true;
    }
    return s;
}

Result<void> check_from_store_mark(std::span<const uint8_t> payload) {
    if (!payload.empty())
        return fail("the 'from a store' section holds " + std::to_string(payload.size()) +
                    " bytes; it is empty");
    return {};
}

}  // namespace ember::snapshot
