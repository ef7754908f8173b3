// perf/snapshot drive_bench: a function's reads of its root file system served from a store
// (ember-store-mount) against the image on the host's disk, and against what a platform does
// without a store: copy the image over, then read it. The image is 64 MiB of bytes that do not
// repeat; the "function" reads 6.5% of it (the average share of an image a Lambda function ever
// reads) as files would be: runs of 4 to 256 KiB at places drawn once, each read from its start in
// 16 KiB reads. Each row times the host's
// page cache dropped first, from its start (ember-store-mount's spawn, or the copy's) to the last
// read, and says how many bytes came from the store. Over HTTP the store and the image are served
// by nginx (Debian's nginx-light) through a forwarder that adds a round trip of 1 ms
// (perf/snapshot/delay_proxy.h). Needs root (a FUSE mount, dropping the page cache).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "perf/percentile.h"
#include "perf/quick.h"
#include "perf/snapshot/bench_process.h"
#include "perf/snapshot/delay_proxy.h"
#include "snapshot/store/directory_store.h"
#include "snapshot/store/manifest.h"
#include "tests/support/mount_namespace.h"
#include "tests/support/nginx_server.h"

namespace {

using namespace ember::perf;
using ember::testing::TempDir;

constexpr uint64_t kImageBytes = uint64_t{64} << 20;
constexpr uint64_t kReadBytes = 16 << 10;
constexpr uint64_t kChunk = 128 << 10;  // ember-snapshot push's default

// The image, written to `path`, and a store at `root` holding it as the drive "rootfs" of the
// manifest "fn" (with the one-chunk state and all-zero memory every manifest has).
bool make_image_and_store(const std::string& path, const std::string& root) {
    std::vector<uint8_t> image(kImageBytes);
    std::mt19937_64 random(7);
    for (size_t i = 0; i < image.size(); i += 8) {
        const uint64_t v = random();
        std::memcpy(image.data() + i, &v, 8);
    }
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || std::fwrite(image.data(), 1, image.size(), f) != image.size()) return false;
    std::fclose(f);
    auto store = ember::snapshot::DirectoryStore::open(root, true);
    if (!store) return std::fprintf(stderr, "%s\n", store.error().message.c_str()), false;
    ember::snapshot::Manifest m;
    m.chunk_size = kChunk;
    const std::vector<uint8_t> state = {'s'};
    m.state = {1, {ember::snapshot::chunk_id_of(state)}};
    m.memory = {4096, {std::nullopt}};
    ember::snapshot::StoredDrive drive{"rootfs", {kImageBytes, {}}};
    bool ok = static_cast<bool>(store->put(*m.state.chunks[0], state, state.size()));
    for (uint64_t at = 0; at < kImageBytes; at += kChunk) {
        const std::span<const uint8_t> piece(image.data() + at, kChunk);
        drive.image.chunks.emplace_back(ember::snapshot::chunk_id_of(piece));
        ok = ok && store->put(*drive.image.chunks.back(), piece, piece.size());
    }
    m.drives.push_back(std::move(drive));
    return ok && store->put_manifest("fn", ember::snapshot::encode_manifest(m));
}

// The function's reads, as (offset, length): 6.5% of the image in "files" of 4 to 256 KiB, each
// read from its start in reads of at most 16 KiB.
std::vector<std::pair<uint64_t, uint64_t>> the_reads(size_t& files) {
    std::vector<std::pair<uint64_t, uint64_t>> reads;
    std::mt19937_64 random(11);
    uint64_t total = 0;
    files = 0;
    while (total < kImageBytes * 65 / 1000) {
        const uint64_t size = uint64_t{4096} << (random() % 7);
        const uint64_t start = random() % ((kImageBytes - size) / 4096) * 4096;
        for (uint64_t at = 0; at < size; at += kReadBytes)
            reads.emplace_back(start + at, std::min(kReadBytes, size - at));
        total += size;
        ++files;
    }
    return reads;
}

bool read_all(const std::string& path, const std::vector<std::pair<uint64_t, uint64_t>>& reads) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::fprintf(stderr, "%s: %s\n", path.c_str(), std::strerror(errno)), false;
    std::vector<char> buffer(kReadBytes);
    bool ok = true;
    for (const auto& [at, length] : reads)
        ok = ok && ::pread(fd, buffer.data(), length, static_cast<off_t>(at)) ==
                       static_cast<ssize_t>(length);
    ::close(fd);
    return ok;
}

struct Mount {
    Proc proc;
    std::string at;
};

// ember-store-mount of `manifest_url` at `at`, waited for until it serves.
bool start_mount(Mount& m, const std::string& manifest_url, const std::string& at,
                 const std::string& cache, const std::string& err) {
    m.at = at;
    ::mkdir(at.c_str(), 0755);
    start(m.proc, {EMBER_STORE_MOUNT, "--manifest", manifest_url, "--at", at, "--cache", cache},
          err);
    const std::string file = at + "/rootfs";
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (::access(file.c_str(), F_OK) != 0) {
        if (Clock::now() > deadline) return std::fprintf(stderr, "the mount never served\n"), false;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return true;
}

// Ends the mount with SIGTERM: the bytes it brought in from the store (or the cache).
uint64_t stop_mount(Mount& m) {
    ::kill(m.proc.pid, SIGTERM);
    ::waitpid(m.proc.pid, nullptr, 0);
    m.proc.pid = -1;
    std::smatch match;
    const std::string err = ember::testing::read_file(m.proc.err);
    if (!std::regex_search(err, match, std::regex("chunks \\(([0-9]+) bytes\\) brought in")))
        return std::fprintf(stderr, "ember-store-mount said: %s\n", err.c_str()), 0;
    return std::stoull(match[1]);
}

}  // namespace

int main() {
    // A peer gone mid-write (a fetcher that gave up on a try) is an error where it is met, not
    // the end of the benchmark.
    ::signal(SIGPIPE, SIG_IGN);
    const bool quick = quick_mode();
    const int runs = quick ? 1 : 7;
    if (const std::string why = ember::testing::in_own_mount_namespace(); !why.empty())
        return std::fprintf(stderr, "%s\n", why.c_str()), 1;
    TempDir dir;
    const std::string image = dir.path() + "/image.ext4", store = dir.path() + "/store";
    if (!make_image_and_store(image, store)) return 1;
    size_t files = 0;
    const auto reads = the_reads(files);
    uint64_t read_bytes = 0;
    for (const auto& r : reads) read_bytes += r.second;
    const std::string cache = dir.path() + "/cache", err = dir.path() + "/mount.err";

    std::vector<double> local, copied, empty, warm, http_empty, http_warm, http_copied;
    uint64_t brought_empty = 0, brought_warm = 0;
    int mounts = 0;
    // One mount's reads: a folder of its own each time, so that no page of the last is cached.
    auto through_mount = [&](const std::string& url, bool empty_cache, std::vector<double>& into,
                             uint64_t* brought) {
        if (empty_cache) std::filesystem::remove_all(cache);
        drop_page_cache();
        Mount m;
        const auto t0 = Clock::now();
        const std::string at = dir.path() + "/mnt" + std::to_string(mounts++);
        if (!start_mount(m, url, at, cache, err) || !read_all(at + "/rootfs", reads)) return false;
        into.push_back(ms_since(t0));
        const uint64_t b = stop_mount(m);
        if (brought != nullptr) *brought = b;
        return b > 0;
    };
    auto copy_then_read = [&](const std::vector<std::string>& copy, std::vector<double>& into) {
        const std::string to = dir.path() + "/copied.ext4";
        std::filesystem::remove(to);
        drop_page_cache();
        const auto t0 = Clock::now();
        std::vector<std::string> argv = copy;
        argv.push_back(to);
        if (ember::testing::run_process(argv, std::chrono::minutes(5)).exit_code != 0 ||
            !read_all(to, reads))
            return std::fprintf(stderr, "%s failed\n", copy[0].c_str()), false;
        into.push_back(ms_since(t0));
        return true;
    };
    const std::string folder_url = "file://" + store + "/snapshots/fn.json";
    for (int i = 0; i < runs; ++i) {
        drop_page_cache();
        const auto t0 = Clock::now();
        if (!read_all(image, reads)) return 1;
        local.push_back(ms_since(t0));
        if (!copy_then_read({"/bin/cp", image}, copied) ||
            !through_mount(folder_url, true, empty, &brought_empty) ||
            !through_mount(folder_url, false, warm, &brought_warm))
            return 1;
    }
    ember::testing::Nginx web(dir, dir.path());
    if (!web.ready())
        return std::fprintf(stderr, "nginx did not start: %s\n", web.error_log().c_str()), 1;
    {
        DelayProxy proxy(web.port(), std::chrono::milliseconds(1));
        const std::string url = "http://127.0.0.1:" + std::to_string(proxy.port());
        for (int i = 0; i < runs; ++i)
            if (!through_mount(url + "/store/snapshots/fn.json", true, http_empty, nullptr) ||
                !through_mount(url + "/store/snapshots/fn.json", false, http_warm, nullptr) ||
                !copy_then_read({"/usr/bin/curl", "-sf", url + "/image.ext4", "-o"}, http_copied))
                return 1;
    }

    const double base = percentile(local, 0.5);
    std::printf(
        "\na function's reads of its root file system (6.5%% of a 64 MiB image: %zu files of 4 to "
        "256 KiB, %zu reads), the page cache dropped first, ms, median of %d:\n\n| image | ms | x "
        "local file |\n|---|---|---|\n",
        files, reads.size(), runs);
    auto row = [&](const char* name, const std::vector<double>& v) {
        std::printf("| %s | %.1f | %.2f |\n", name, percentile(v, 0.5), percentile(v, 0.5) / base);
    };
    row("the image on the host's disk", local);
    row("copy the image on the host, then read", copied);
    row("store in a local folder, empty cache", empty);
    row("store in a local folder, warm cache", warm);
    row("store over HTTP 1 ms away, empty cache", http_empty);
    row("store over HTTP 1 ms away, warm cache", http_warm);
    row("copy the image over HTTP 1 ms away, then read", http_copied);
    std::printf("at 1 ms: store (empty cache) / copy then read %.2f\n",
                percentile(http_empty, 0.5) / percentile(http_copied, 0.5));
    std::printf(
        "brought in from the store: %llu KiB for %llu KiB read (%.2fx; 128 KiB chunks); from the "
        "warm cache: %llu KiB\n",
        static_cast<unsigned long long>(brought_empty >> 10),
        static_cast<unsigned long long>(read_bytes >> 10),
        static_cast<double>(brought_empty) / static_cast<double>(read_bytes),
        static_cast<unsigned long long>(brought_warm >> 10));
    return 0;
}
