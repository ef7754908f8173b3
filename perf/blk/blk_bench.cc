// perf/blk: reads and writes through ember's virtio-blk device path, driven by the host queue
// harness (so guest speed does not matter), beside fio --ioengine=io_uring on the same file, in the
// same run, on the io_uring and Sync engines, page cache and O_DIRECT:
// - 4 KiB random reads and writes at queue depth 1 and 32;
// - what a FaaS guest's start makes: 4 KiB and 64 KiB sequential reads of its root file system,
//   and 4 KiB sequential writes each followed by a flush (a log's append and fdatasync: the
//   drive is cache_type Writeback, fio runs --fdatasync=1), at queue depth 1.
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "perf/quick.h"
#include "tests/support/ember_process.h"
#include "tests/support/virtq_harness.h"
#include "virtio/block/block_device.h"

namespace {

using namespace ember;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kFileBytes = 256ull << 20;

struct Workload {
    bool write;
    bool sequential;
    uint32_t block;
    bool flush_each;  // each write is followed by a flush, and the pair counts as one
    unsigned depth;
};

struct NoIrq : IrqTrigger {
    void trigger() override {}
};

// One request slot: three fixed descriptors (header, data, status) and their buffers.
struct Slot {
    uint16_t head;
    uint64_t header, data, status;
};

double device_iops(const std::string& file, IoEngineType engine, bool direct, const Workload& w,
                   std::chrono::milliseconds duration) {
    testing::VirtqHarness h(256, 16ull << 20);
    NoIrq irq;
    virtio::Interrupt interrupt(irq);
    DriveConfig config;
    config.drive_id = "bench";
    config.path_on_host = file;
    config.io_engine = engine;
    if (w.flush_each) config.cache_type = CacheType::Writeback;
    auto dev = virtio::BlockDevice::create(config, h.mem(), interrupt, {direct});
    if (!dev) {
        std::fprintf(stderr, "%s\n", dev.error().message.c_str());
        return 0;
    }
    std::vector<virtio::Queue> queues;
    queues.emplace_back(h.state());
    if (!(*dev)->activate((*dev)->offered_features(), std::move(queues))) return 0;

    std::mt19937_64 rng(42);
    const uint64_t blocks = kFileBytes / w.block;
    uint64_t next_block = 0;
    std::vector<Slot> slots(w.depth);
    for (unsigned i = 0; i < w.depth; ++i) {
        Slot& s = slots[i];
        s.head = static_cast<uint16_t>(3 * i);
        s.header = h.alloc(16);
        s.data = h.alloc(w.block);
        s.status = h.alloc(1);
        h.write_desc(s.head + 2, s.status, 1, virtio::kDescFWrite, 0);
    }
    // A slot's next request: the data, or (flush_each) the flush after its write.
    std::vector<bool> flush_next(w.depth, false);
    auto post = [&](Slot& s) {
        const size_t i = s.head / 3;
        if (flush_next[i]) {
            (void)h.mem().write_obj(s.header, uint32_t{VIRTIO_BLK_T_FLUSH});
            (void)h.mem().write_obj(s.header + 8, uint64_t{0});
            h.write_desc(s.head, s.header, 16, virtio::kDescFNext, s.head + 2);
        } else {
            const uint64_t block = w.sequential ? next_block++ % blocks : rng() % blocks;
            (void)h.mem().write_obj(
                s.header, static_cast<uint32_t>(w.write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN));
            (void)h.mem().write_obj(s.header + 8, block * (w.block / 512));
            h.write_desc(s.head, s.header, 16, virtio::kDescFNext, s.head + 1);
            h.write_desc(
                s.head + 1, s.data, w.block,
                static_cast<uint16_t>(virtio::kDescFNext | (w.write ? 0 : virtio::kDescFWrite)),
                s.head + 2);
        }
        h.publish(s.head);
    };
    for (auto& s : slots) post(s);
    (*dev)->process_queue(0);

    // The VMM thread's own loop runs the device's completions, as in ember.
    auto loop = EventLoop::create();
    if (!loop || !(*dev)->attach(*loop)) return 0;
    uint64_t done = 0;
    uint16_t seen = 0;
    const auto start = Clock::now();
    const auto end = start + duration;
    while (Clock::now() < end) {
        // As the VMM thread: it waits for the ring's completions only when nothing is answered
        // yet. The synchronous engine answers inside process_queue(), and the ring's engine what
        // the page cache takes at once.
        uint16_t used = h.used_idx();
        if (used == seen) {
            (void)loop->run_once(100);
            continue;
        }
        bool reposted = false;
        for (; seen != used; ++seen) {
            uint64_t elem = testing::VirtqHarness::kUsed + 4 + 8ull * (seen % h.size());
            uint32_t head = *h.mem().read_obj<uint32_t>(elem);
            const size_t i = head / 3;
            if (w.flush_each) flush_next[i] = !flush_next[i];
            if (!flush_next[i]) ++done;  // a write and its flush are one
            post(slots[i]);
            reposted = true;
        }
        if (reposted) (*dev)->process_queue(0);
    }
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    if ((*dev)->counters().io_errors || (*dev)->counters().invalid_requests) {
        std::fprintf(stderr, "device reported errors\n");
        return 0;
    }
    return static_cast<double>(done) / secs;
}

double fio_iops(const std::string& file, bool direct, const Workload& w,
                std::chrono::milliseconds duration, const std::string& fio) {
    testing::TempDir dir;
    std::vector<std::string> argv = {
        fio,
        "--name=bench",
        "--filename=" + file,
        "--ioengine=io_uring",
        std::string("--rw=") + (w.sequential ? "" : "rand") + (w.write ? "write" : "read"),
        "--bs=" + std::to_string(w.block),
        "--iodepth=" + std::to_string(w.depth),
        "--direct=" + std::string(direct ? "1" : "0"),
        "--size=" + std::to_string(kFileBytes),
        "--time_based",
        "--runtime=" + std::to_string(duration.count()) + "ms",
        "--randrepeat=1",
        "--norandommap",
        "--output-format=terse",
        "--terse-version=3",
        "--invalidate=0"};
    if (w.flush_each) argv.push_back("--fdatasync=1");
    auto r = testing::run_process(argv, std::chrono::seconds(60));
    // Terse v3: field 8 is read IOPS, field 49 write IOPS (1-based, ';'-separated).
    std::vector<std::string> fields;
    size_t pos = 0;
    while (pos <= r.out.size()) {
        size_t next = r.out.find(';', pos);
        if (next == std::string::npos) next = r.out.size();
        fields.push_back(r.out.substr(pos, next - pos));
        pos = next + 1;
    }
    size_t field = w.write ? 48 : 7;
    if (fields.size() <= field) {
        std::fprintf(stderr, "%s failed (exit %d): %s\n", fio.c_str(), r.exit_code, r.err.c_str());
        return 0;
    }
    return std::stod(fields[field]);
}

// Each run starts from the same file: what earlier runs left dirty in the page cache written out
// (the first flush of a run would otherwise write back a whole earlier write cell's pages), and
// for a page-cache run, all of it read, so cached whatever ran before (an O_DIRECT write drops the
// pages it wrote).
void settle(const std::string& file, bool cached) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    std::vector<char> chunk(1 << 20);
    while (cached && ::read(fd, chunk.data(), chunk.size()) > 0) {
    }
    ::close(fd);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::string fio = "/usr/bin/fio";
    const bool quick = ember::perf::quick_mode();
    int ms = quick ? 50 : 1500;
    int reps = quick ? 1 : 3;
    // /var/tmp: a real disk, so O_DIRECT means what it says (a tmpfs /tmp would refuse it).
    std::string dir = "/var/tmp";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--fio" && i + 1 < argc)
            fio = argv[++i];
        else if (a == "--ms" && i + 1 < argc)
            ms = std::stoi(argv[++i]);
        else if (a == "--reps" && i + 1 < argc)
            reps = std::stoi(argv[++i]);
        else if (a == "--dir" && i + 1 < argc)
            dir = argv[++i];
        else {
            std::fprintf(stderr,
                         "usage: blk_bench [--fio PATH] [--ms MILLISECONDS_PER_RUN] [--reps N] "
                         "[--dir DIRECTORY]\n");
            return 2;
        }
    }
    const std::string file = dir + "/ember-blk-bench.img";
    {
        // Real data, not a sparse file, so O_DIRECT reads go to the disk.
        int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) {
            std::perror(file.c_str());
            return 1;
        }
        std::vector<char> chunk(1 << 20, 'z');
        for (uint64_t i = 0; i < kFileBytes / chunk.size(); ++i) {
            if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size()))
                return 1;
        }
        ::fsync(fd);
        ::close(fd);
    }
    const auto duration = std::chrono::milliseconds(ms);
    std::printf(
        "perf/blk: %llu MiB file, IOPS (a write and its flush count as one): median of %d "
        "interleaved %d ms runs per cell\n\n",
        static_cast<unsigned long long>(kFileBytes >> 20), reps, ms);
    std::printf(
        "| cache | op | block | QD | ember io_uring | ember Sync | fio io_uring | io_uring/fio | "
        "io_uring/Sync |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|\n");
    std::vector<Workload> workloads;
    for (bool write : {false, true})
        for (unsigned depth : {1u, 32u}) workloads.push_back({write, false, 4096, false, depth});
    workloads.push_back({false, true, 4096, false, 1});
    workloads.push_back({false, true, 64 << 10, false, 1});
    workloads.push_back({true, true, 4096, true, 1});
    for (bool direct : {false, true}) {
        for (const Workload& w : workloads) {
            std::vector<double> u, sy, f;
            auto cached = [&] { settle(file, !direct); };
            for (int rep = 0; rep < reps; ++rep) {
                cached();
                u.push_back(device_iops(file, IoEngineType::Async, direct, w, duration));
                cached();
                f.push_back(fio_iops(file, direct, w, duration, fio));
                cached();
                sy.push_back(device_iops(file, IoEngineType::Sync, direct, w, duration));
            }
            double uring = median(u), sync = median(sy), peer = median(f);
            const char* op = w.flush_each   ? "write+fdatasync"
                             : w.sequential ? (w.write ? "write" : "read")
                             : w.write      ? "randwrite"
                                            : "randread";
            std::printf("| %s | %s | %u KiB | %u | %.0f | %.0f | %.0f | %.2f | %.2f |\n",
                        direct ? "O_DIRECT" : "page cache", op, w.block >> 10, w.depth, uring, sync,
                        peer, peer > 0 ? uring / peer : 0, sync > 0 ? uring / sync : 0);
            std::fflush(stdout);
        }
    }
    ::unlink(file.c_str());
    return 0;
}
