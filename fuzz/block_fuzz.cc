// virtio-blk requests as a hostile guest writes them (header, data and status in any layout, any
// sector, any type) through the device and both I/O engines, against a scratch image. Nothing may
// be written outside the image: it never grows, and a read-only one never changes. Every chain
// the device takes comes back on the used ring.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <string>

#include "core/base/log.h"
#include "fuzz/support/fake_device.h"
#include "fuzz/support/fuzzed_queues.h"
#include "fuzz/support/queue_watch.h"
#include "fuzz/support/require.h"
#include "virtio/block/block_device.h"

using namespace ember;
using fuzz::require;

namespace {

constexpr size_t kImageBytes = 32 << 10;

struct Drive {
    std::string path;
    std::unique_ptr<virtio::BlockDevice> device;
    std::string contents;  // a read-only image's, which must never change
};

std::string read_image(const std::string& path) {
    std::string bytes(kImageBytes + 1, '\0');
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    const ssize_t n = ::pread(fd, bytes.data(), bytes.size(), 0);
    ::close(fd);
    bytes.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return bytes;
}

struct Drives {
    explicit Drives(const GuestMemory& mem) : interrupt(irq) {
        char dir[] = "/tmp/ember-block-fuzz-XXXXXX";
        require(::mkdtemp(dir) != nullptr, "a scratch directory");
        scratch = dir;
        for (size_t i = 0; i < drives.size(); ++i) {
            auto& d = drives[i];
            d.path = std::string(dir) + "/disk" + std::to_string(i);
            std::string pattern(kImageBytes, '\0');
            for (size_t b = 0; b < pattern.size(); ++b) pattern[b] = static_cast<char>(b * 7 + i);
            const int fd = ::open(d.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            require(::pwrite(fd, pattern.data(), pattern.size(), 0) ==
                        static_cast<ssize_t>(pattern.size()),
                    "the scratch image is written");
            ::close(fd);
            DriveConfig config;
            config.drive_id = "fuzz" + std::to_string(i);
            config.path_on_host = d.path;
            config.io_engine = i & 1 ? IoEngineType::Async : IoEngineType::Sync;
            config.is_read_only = i & 2;
            config.cache_type = i & 4 ? CacheType::Writeback : CacheType::Unsafe;
            auto device = virtio::BlockDevice::create(config, mem, interrupt, {});
            if (!device) std::fprintf(stderr, "%s\n", device.error().message.c_str());
            require(device.has_value(), "a block device over the scratch image");
            d.device = std::move(*device);
            if (config.is_read_only) d.contents = read_image(d.path);
        }
    }
    ~Drives() {
        for (auto& d : drives) {
            d.device.reset();
            ::unlink(d.path.c_str());
        }
        ::rmdir(scratch.c_str());
    }
    std::string scratch;
    fuzz::NullIrq irq;
    virtio::Interrupt interrupt;
    // Sync and Async, each read-write and read-only, each with both cache types.
    std::array<Drive, 8> drives;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const GuestMemory mem = [] {
        log::set_level(log::Level::Off);
        return fuzz::make_guest_memory();
    }();
    static Drives all(mem);
    FuzzedDataProvider in(data, size);
    Drive& drive = all.drives[in.ConsumeIntegralInRange<size_t>(0, all.drives.size() - 1)];
    auto& device = *drive.device;
    virtio::QueueState state = fuzz::fuzzed_queue(in, 0);
    fuzz::fill_guest_memory(mem, in);
    if (!virtio::Queue(state).validate(mem)) return 0;

    const fuzz::QueueWatch watch(mem, state);
    std::vector<virtio::Queue> queues;
    queues.emplace_back(state);
    require(device.activate(device.offered_features(), std::move(queues)).has_value(),
            "a valid queue activates the device");
    device.process_queue(0);
    // The VMM loop's part: completions, and the requests a full engine held back.
    for (int round = 0; round < 64; ++round) {
        const auto before = device.queue_states()[0];
        (void)device.quiesce();
        device.process_completions();
        device.process_queue(0);
        const auto after = device.queue_states()[0];
        if (after.next_avail == before.next_avail && after.next_used == before.next_used) break;
    }
    require(device.quiesce().has_value(), "a file image answers everything");
    const auto states = device.queue_states();
    require(states.size() == 1, "an active device has its queue");
    // A broken ring (its index ran ahead) shows as a queue the device stopped taking from.
    const uint16_t posted = static_cast<uint16_t>(fuzz::avail_idx(mem, state) - state.next_avail);
    watch.require_all_returned(states[0], posted > state.size);
    device.reset();

    struct stat st{};
    require(::stat(drive.path.c_str(), &st) == 0 && st.st_size == static_cast<off_t>(kImageBytes),
            "the image never grows: nothing is written past its end");
    if (!drive.contents.empty())
        require(read_image(drive.path) == drive.contents, "a read-only image never changes");
    return 0;
}
