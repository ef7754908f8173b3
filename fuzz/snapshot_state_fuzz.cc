// State files as they might come back from storage, tampered with: the container (magic, format
// version, section headers and lengths), then every section ember knows, each through the decoder
// or device that reads it at restore. What is taken must be what would be written again: a file
// re-encodes byte for byte from its sections, and each section from what its decoder made of it.
//
// The file's checksum would stop nearly every mutation at the door, so the first byte chooses:
// odd, the input is the whole file, checksum included; even, the rest of the input is the file
// without its checksum, and the target appends the right one.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/base/event_fd.h"
#include "core/base/log.h"
#include "core/base/state_sections.h"
#include "core/devices/i8042.h"
#include "core/devices/output_buffer.h"
#include "core/devices/serial.h"
#include "fuzz/support/fake_device.h"
#include "fuzz/support/fuzzed_queues.h"
#include "fuzz/support/require.h"
#include "snapshot/config_section.h"
#include "snapshot/cpu_template_section.h"
#include "snapshot/decoded_snapshot.h"
#include "snapshot/devices.h"
#include "snapshot/format.h"
#include "snapshot/machine_state.h"
#include "virtio/mmio/mmio_transport.h"

using namespace ember;
using fuzz::require;

namespace {

// A decoded payload's encoding is the payload, or the decoder refused it.
template <typename T>
void require_round_trip(std::span<const uint8_t> payload, const Result<T>& decoded) {
    if (!decoded) {
        require(!decoded.error().message.empty(), "a refusal says why");
        return;
    }
    require(snapshot::encode(*decoded) == std::vector<uint8_t>(payload.begin(), payload.end()),
            "a section re-encodes to the bytes it was read from");
}

// A device restored from a payload saves that payload again, or it refused it. In a tagged file
// the payload follows the device's tag, which must also read back as written.
void require_round_trip(Persistent& device, const snapshot::Section& s, bool tagged) {
    std::span<const uint8_t> payload = s.payload;
    if (tagged) {
        auto split = snapshot::split_device_section(s.payload);
        if (!split) {
            require(!split.error().message.empty(), "a refusal says why");
            return;
        }
        require(snapshot::tagged_payload(split->tag, split->payload) ==
                    std::vector<uint8_t>(s.payload.begin(), s.payload.end()),
                "a device tag re-encodes to the bytes it was read from");
        payload = split->payload;
    }
    auto restored = device.restore(payload, s.version);
    if (!restored) {
        require(!restored.error().message.empty(), "a refusal says why");
        return;
    }
    require(device.save() == std::vector<uint8_t>(payload.begin(), payload.end()),
            "a device saves what it was restored from");
}

void check_section(const snapshot::Section& s, bool tagged, const GuestMemory& mem) {
    static fuzz::NullIrq irq;
    if (std::getenv("EMBER_FUZZ_VERBOSE"))
        std::fprintf(stderr, "section %u (%s), %zu bytes\n", s.id,
                     std::string(state_sections::name_of(s.id)).c_str(), s.payload.size());
    switch (s.id) {
        case snapshot::kConfig:
            require_round_trip(s.payload, snapshot::decode_config(s.payload, s.version));
            break;
        case snapshot::kVmKvm: require_round_trip(s.payload, snapshot::decode_vm(s.payload)); break;
        case state_sections::kCpuTemplate.id:
            require_round_trip(s.payload, snapshot::decode_cpu_template(s.payload));
            break;
        case snapshot::kVcpu: {
            // Versions 1 (no nested state), 2 (one) and 3 (an exception pending) are all still
            // written.
            auto vcpu = snapshot::decode_vcpu(s.payload, s.version);
            if (vcpu)
                require(snapshot::vcpu_section_version(*vcpu) == s.version,
                        "a vCPU section is read back at the version it would be written at");
            require_round_trip(s.payload, vcpu);
            break;
        }
        case snapshot::kMemory: {
            auto layout = snapshot::decode_memory(s.payload, s.version);
            if (s.version == snapshot::kMemoryLayoutVersion) {
                require_round_trip(s.payload, layout);
            } else if (layout) {
                // A version 1 section is the regions alone; version 2 adds the generation ID
                // ("none" here) and version 3 the page size (4 KiB before it).
                std::vector<uint8_t> upgraded(s.payload.begin(), s.payload.end());
                if (s.version < 2) upgraded.push_back(0);
                const uint64_t page_size = kGuestPageSize;
                const auto* bytes = reinterpret_cast<const uint8_t*>(&page_size);
                upgraded.insert(upgraded.end(), bytes, bytes + sizeof page_size);
                require(snapshot::encode(*layout) == upgraded,
                        "an older memory section re-encodes as today's with nothing added");
            }
            break;
        }
        case state_sections::kSerial.id: {
            OutputBuffer out(64, std::move(*EventFd::create()));
            Serial serial(irq, out);
            require_round_trip(serial, s, tagged);
            break;
        }
        case state_sections::kI8042.id: {
            I8042 i8042(irq, [] {});
            require_round_trip(i8042, s, tagged);
            break;
        }
        case state_sections::kVirtio.id: {
            fuzz::FakeDevice device(mem);
            virtio::Interrupt interrupt(irq);
            auto transport =
                virtio::MmioTransport::create(device, interrupt, mem, nullptr, 0xd0000000);
            require(transport.has_value(), "a transport can be made");
            require_round_trip(**transport, s, tagged);
            break;
        }
        case state_sections::kFromStore.id: {
            // A mark with nothing to decode: taken only empty, and then written back empty.
            auto empty = snapshot::check_from_store_mark(s.payload);
            require(empty.has_value() == s.payload.empty(), "a mark is taken only when empty");
            if (!empty) require(!empty.error().message.empty(), "a refusal says why");
            break;
        }
        default: require(false, "the reader hands out only the sections it was told it knows");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const GuestMemory mem = [] {
        log::set_level(log::Level::Off);
        return fuzz::make_guest_memory();
    }();
    if (size == 0) return 0;
    std::vector<uint8_t> file(data + 1, data + size);
    if (!(data[0] & 1)) {
        const uint64_t sum = snapshot::fnv1a64(file);
        const auto* bytes = reinterpret_cast<const uint8_t*>(&sum);
        file.insert(file.end(), bytes, bytes + sizeof sum);
    }
    auto reader = snapshot::Reader::parse(file, state_sections::kAll);
    if (!reader) {
        require(!reader.error().message.empty(), "a refusal says why");
        return 0;
    }
    snapshot::Writer again(reader->format_version());
    for (const auto& s : reader->sections()) {
        check_section(s, reader->format_version() >= snapshot::kFirstTaggedFormat, mem);
        again.add(s.id | (s.optional ? snapshot::kOptional : 0), s.version, s.payload);
    }
    // Optional sections this ember skipped are not written back.
    if (reader->skipped() == 0)
        require(again.finish() == file, "a state file re-encodes byte for byte");
    return 0;
}
