// perf/snapshot store_bench: a restore from a store of chunks (snapshot/store) against a restore
// from the memory file on the host's disk, and against what a platform does without a store: copy
// the memory file over, then load it. The toucher (256 MiB, 64 MiB of it filled) is snapshotted;
// a lazy restore's first pass records its working set, and the snapshot is pushed with it three
// times, each into a store of its own: as push does by default (its chunks compressed at zstd level
// 3, the working set's once more in a pack a restore reads by ranges), the same without the pack
// (--pack-bytes 0: the working set fetched a chunk at a time), and its chunks as they are
// (--compression-level 0, with a pack); the empty cache's rows restore from all three, in turn
// first. Each
// row times one restore from its start (the handler's spawn where there is one, the load request
// where not, the copy's start for the copy) to the end of the guest's first pass over its 64 MiB,
// the function's "first answer"; ember is started beforehand in every row. A restore from the store
// is made as the client makes one: ember-uffd writes the working set's index beside the state file
// and the load names it (ember pre-faults those pages once they are in); the handler's own time to
// install the working set is given beside. A warm host's view of
// the snapshot (ember-snapshot view: the snapshot made whole in the cache) is made before the runs,
// then timed from the command that finds it (pinned by the manifest's SHA-256, as an agent that
// names its functions by it would ask: the store is not asked, so it is one row for any store) to
// the answer of a File load from it; making one from a warm cache, and finding one without the
// pin (the manifest read from the store), are timed beside. Each row also gives the clone's
// anonymous memory after the answer: what it holds of its own. Then what the store fetched against
// the working set, and what two snapshots of one guest share in the store. Then the same over HTTP:
// the store and the memory file served by nginx (Debian's nginx-light) through a forwarder that
// adds a round trip of 1 ms, then 10 ms, then 1 ms on a link of 1 Gbit/s that every connection
// shares (perf/snapshot/delay_proxy.h; this host's kernel may have no netem): the store with an
// empty cache, and copying the memory file over (curl), then loading it.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "core/base/folder_watch.h"
#include "perf/percentile.h"
#include "perf/quick.h"
#include "perf/snapshot/bench_process.h"
#include "perf/snapshot/delay_proxy.h"
#include "tests/support/nginx_server.h"

namespace {

using namespace ember::perf;
using ember::testing::TempDir;

struct Snapshot {
    std::string state, mem, ws;
};

// The toucher writes 8 bytes of each page (its number), which would compress 500-fold: here each
// page's next 1,256 bytes are filled from a xorshift generator seeded by the page's number, the
// rest left zeros, so that the memory compresses as a real guest's did (zstd level 3: a Python
// runtime's snapshot in tests/e2e/python_runtime.sh, 3.25x; these pages 3.24x). The guest reads
// only each page's first byte. Filled on the host: the toucher's ring 0 is emulated on some hosts,
// where its writing them took half a minute.
bool fill_like_a_guest(const std::string& mem) {
    ember::UniqueFd fd(::open(mem.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return std::perror(mem.c_str()), false;
    constexpr uint64_t kBase = 0x1000000, kPages = 16384, kWords = 157;
    std::vector<uint64_t> words(kWords);
    for (uint64_t p = 0; p < kPages; ++p) {
        uint64_t x = (p + 1) * 0x9e3779b97f4a7c15ull;
        for (auto& w : words) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w = x;
        }
        const auto at = static_cast<off_t>(kBase + p * 4096 + 8);
        if (::pwrite(fd.get(), words.data(), kWords * 8, at) != static_cast<ssize_t>(kWords * 8))
            return std::perror(mem.c_str()), false;
    }
    return true;
}

// Boots the toucher, snapshots it at `prefix`.state/.mem (its pages filled as a guest's,
// fill_like_a_guest), then records the working set of a lazy restore's first pass at `prefix`.ws.
bool make_snapshot(const std::string& sock, const std::string& prefix, Snapshot& s) {
    s = {prefix + ".state", prefix + ".mem", prefix + ".ws"};
    {
        Proc a;
        start_ember(a, sock);
        auto c = EmberApi::connect(sock);
        if (!c) return std::fprintf(stderr, "ember: %s\n", c.error().message.c_str()), false;
        if (!boot_toucher(*c, a, R"({"vcpu_count": 1, "mem_size_mib": 256})")) return false;
        if (!call(*c, "PATCH", "/vm", R"({"state": "Paused"})") ||
            !call(*c, "PUT", "/snapshot/create",
                  R"({"snapshot_path": ")" + s.state + R"(", "mem_file_path": ")" + s.mem + "\"}"))
            return false;
    }
    if (!fill_like_a_guest(s.mem)) return false;
    Proc b;
    start_ember(b, sock);
    auto c = EmberApi::connect(sock);
    return c &&
           call(*c, "PUT", "/snapshot/load",
                R"({"snapshot_path": ")" + s.state +
                    R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" + s.mem +
                    R"("}, "resume_vm": true})") &&
           call(*c, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})") &&
           wait_char(b, 'T') &&
           call(*c, "PUT", "/snapshot/working-set", R"({"working_set_path": ")" + s.ws + "\"}");
}

std::string file_load(const std::string& state, const std::string& mem, const std::string& ws) {
    return R"({"snapshot_path": ")" + state +
           R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" + mem +
           R"("}, "resume_vm": true, "working_set_path": ")" + ws + "\"}";
}

std::string uffd_load(const std::string& state, const std::string& handler_sock,
                      const std::string& ws = "") {
    return R"({"snapshot_path": ")" + state +
           R"(", "mem_backend": {"backend_type": "Uffd", "backend_path": ")" + handler_sock +
           "\"}, \"resume_vm\": true" +
           (ws.empty() ? std::string() : R"(, "working_set_path": ")" + ws + "\"") + "}";
}

// ember-uffd renames its socket into place once it listens.
bool wait_socket(const std::string& path, const Proc& handler) {
    ember::FolderWatch watch = ember::FolderWatch::of(path);
    for (auto t = Clock::now(); ms_since(t) < 120000;) {
        struct stat st{};
        if (::stat(path.c_str(), &st) == 0) return true;
        siginfo_t ended{};  // looked at, not reaped: ~Proc reaps it
        if (::waitid(P_PID, static_cast<id_t>(handler.pid), &ended, WEXITED | WNOHANG | WNOWAIT) ==
                0 &&
            ended.si_pid == handler.pid)
            break;
        watch.wait(std::chrono::milliseconds(1));
    }
    return std::fprintf(stderr, "no handler socket at %s; its log:\n%s\n", path.c_str(),
                        ember::testing::read_file(handler.err).c_str()),
           false;
}

// ember-snapshot view of `url` in the cache `cache` (pinned by the manifest's SHA-256 `pin` where
// given): the load body it prints, with resume_vm; empty where it failed. `ms` is how long it took.
std::string view_load(const std::string& url, const std::string& cache, const std::string& pin = "",
                      double* ms = nullptr) {
    std::vector<std::string> argv = {EMBER_SNAPSHOT, "view", "--cache", cache, url};
    if (!pin.empty()) argv.insert(argv.end() - 1, {"--manifest-sha256", pin});
    const auto t0 = Clock::now();
    auto r = ember::testing::run_process(argv, std::chrono::minutes(5));
    if (ms != nullptr) *ms = ms_since(t0);
    if (r.exit_code != 0 || r.out.rfind('}') == std::string::npos)
        return std::fprintf(stderr, "view: %s\n", r.err.c_str()), std::string();
    return r.out.substr(0, r.out.rfind('}')) + R"(, "resume_vm": true})";
}

uint64_t number_before(const std::string& text, const std::string& what) {
    std::smatch m;
    return std::regex_search(text, m, std::regex("([0-9]+) " + what)) ? std::stoull(m[1]) : 0;
}

// A process's anonymous memory, KiB: what a clone holds of its own (the page cache's pages of a
// mapped memory file are every clone's).
uint64_t anonymous_kib_of(pid_t pid) {
    const std::string rollup =
        ember::testing::read_file("/proc/" + std::to_string(pid) + "/smaps_rollup");
    std::smatch m;
    return std::regex_search(rollup, m, std::regex(R"(Anonymous:\s+([0-9]+) kB)"))
               ? std::stoull(m[1])
               : 0;
}

}  // namespace

int main() {
    // A peer gone mid-write (a fetcher that gave up on a try) is an error where it is met, not
    // the end of the benchmark.
    ::signal(SIGPIPE, SIG_IGN);
    const bool quick = ember::perf::quick_mode();
    const int runs = quick ? 1 : 7;
    TempDir dir;
    const std::string sock = dir.path() + "/api.sock", hsock = dir.path() + "/uffd.sock";
    Snapshot s, other;
    if (!make_snapshot(sock, dir.path() + "/a", s) ||
        !make_snapshot(sock, dir.path() + "/b", other))
        return 1;
    const std::string store = dir.path() + "/store", raw_store = dir.path() + "/raw-store",
                      unpacked_store = dir.path() + "/unpacked-store";
    // Into `root`, its chunks compressed at zstd's `level` (0: stored as they are), the working
    // set's packed unless `packs` is false.
    auto push = [&](const Snapshot& x, const std::string& root, const std::string& name, int level,
                    bool packs = true) {
        std::vector<std::string> argv = {EMBER_SNAPSHOT,
                                         "push",
                                         "--snapshot-path",
                                         x.state,
                                         "--mem-file-path",
                                         x.mem,
                                         "--working-set",
                                         x.ws,
                                         "--compression-level",
                                         std::to_string(level),
                                         "file://" + root + "/snapshots/" + name + ".json"};
        if (!packs) argv.insert(argv.end() - 1, {"--pack-bytes", "0"});
        auto r = ember::testing::run_process(argv, std::chrono::minutes(5));
        if (r.exit_code != 0) std::fprintf(stderr, "push: %s\n", r.err.c_str());
        return r;
    };
    const auto first = push(s, store, "a", 3);
    const auto second = push(other, store, "b", 3);
    const auto uncompressed = push(s, raw_store, "a", 0);
    const auto unpacked = push(s, unpacked_store, "a", 3, false);
    if (first.exit_code != 0 || second.exit_code != 0 || uncompressed.exit_code != 0 ||
        unpacked.exit_code != 0)
        return 1;
    // The empty cache's restores from the three stores, in turn first (the later ones may meet
    // the first's writes): run `i` of each.
    struct EmptyRow {
        std::string root;
        std::vector<double>* into;
    };
    auto in_turn = [](int i, std::vector<EmptyRow> rows, const auto& one) {
        std::rotate(rows.begin(), rows.begin() + i % static_cast<int>(rows.size()), rows.end());
        for (const auto& r : rows)
            if (!one(r)) return false;
        return true;
    };

    // Each row's clones' anonymous memory after the first answer, by the row's times.
    std::map<const std::vector<double>*, std::vector<double>> anonymous_kib;
    // And, where a handler served it, the time it took to install the working set, ms.
    std::map<const std::vector<double>*, std::vector<double>> install_ms;
    // One restore: `begin` starts it (and may spawn a handler into `handler`), `load` is the body.
    std::string handler_log;
    auto restore = [&](const auto& begin, const std::string& load, std::vector<double>& into) {
        std::optional<Proc> vm(std::in_place);
        start_ember(*vm, sock);
        auto c = EmberApi::connect(sock);
        if (!c) return std::fprintf(stderr, "ember: %s\n", c.error().message.c_str()), false;
        Proc handler;
        // What the rows before wrote (a cache, a view, a copied memory file) goes to the disk
        // first: no row pays for another's writes.
        ::sync();
        const auto t0 = Clock::now();
        if (!begin(handler)) return std::fprintf(stderr, "the restore could not begin\n"), false;
        if (!call(*c, "PUT", "/snapshot/load", load) ||
            !call(*c, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})") ||
            !wait_char(*vm, 'T'))
            return false;
        into.push_back(ms_since(t0));
        anonymous_kib[&into].push_back(static_cast<double>(anonymous_kib_of(vm->pid)));
        vm.reset();  // ember gone: the handler ends and says what it served
        if (handler.pid > 0) {
            ember::testing::wait_for_end(handler.pid, std::chrono::seconds(30));
            handler.pid = -1;
            handler_log = ember::testing::read_file(handler.err);
            install_ms[&into].push_back(static_cast<double>(number_before(handler_log, "us\\)")) /
                                        1000);
        }
        return true;
    };
    auto no_handler = [](Proc&) { return true; };
    // ember-uffd restoring `manifest` through the cache `cache`, as the client starts it.
    auto through_uffd = [&](const std::string& manifest, const std::string& cache) {
        return [&, manifest, cache](Proc& h) {
            start(h,
                  {EMBER_UFFD, "--socket", hsock, "--manifest", manifest, "--write-state",
                   dir.path() + "/fetched.state", "--write-working-set", dir.path() + "/fetched.ws",
                   "--cache", cache},
                  dir.path() + "/handler.err");
            return wait_socket(hsock, h);
        };
    };
    auto from_store = [&](const std::string& cache, const std::string& root) {
        return through_uffd("file://" + root + "/snapshots/a.json", cache);
    };
    std::vector<double> local, local_uffd, empty, empty_raw, empty_unpacked, warm, viewed,
        view_made, view_unpinned, copied;
    // A restore from the store as the client makes one: the handler writes the working set's index
    // beside the state file, and the load names it, so ember pre-faults those pages once they are
    // in.
    const std::string fetched_load =
        uffd_load(dir.path() + "/fetched.state", hsock, dir.path() + "/fetched.ws");
    const std::string url = "file://" + store + "/snapshots/a.json";
    const std::string held_view = dir.path() + "/view-cache";
    const std::string held_load = view_load(url, held_view);
    if (held_load.empty()) return 1;
    // The manifest's SHA-256, as push printed it: what an agent names the snapshot by.
    std::smatch pinned;
    if (!std::regex_search(first.out, pinned, std::regex("SHA-256 ([0-9a-f]{64})")))
        return std::fprintf(stderr, "push printed no manifest SHA-256: %s\n", first.out.c_str()), 1;
    const std::string pin = pinned[1];
    uint64_t fetched_bytes = 0, fetched_chunks = 0, ws_pages = 0, packed = 0, pack_reads = 0,
             unpacked_chunks = 0;
    // What a warm cache's restore found there and still fetched (none, where the cache kept what
    // the restore before it fetched).
    uint64_t warm_hits = 0, warm_fetched = 0;
    for (int i = 0; i < runs; ++i) {
        if (!restore(no_handler, file_load(s.state, s.mem, s.ws), local)) return 1;
        // The warm host's view, beside the File row.
        if (!restore([&](Proc&) { return view_load(url, held_view, pin) == held_load; }, held_load,
                     viewed))
            return 1;
        if (!restore(
                [&](Proc& h) {
                    start(h,
                          {EMBER_UFFD, "--socket", hsock, "--mem-file", s.mem, "--working-set",
                           s.ws, "--snapshot-path", s.state},
                          dir.path() + "/handler.err");
                    return wait_socket(hsock, h);
                },
                uffd_load(s.state, hsock, s.ws), local_uffd))
            return 1;
        const bool emptied = in_turn(
            i, {{store, &empty}, {unpacked_store, &empty_unpacked}, {raw_store, &empty_raw}},
            [&](const EmptyRow& r) {
                std::filesystem::remove_all(dir.path() + "/cache");
                if (!restore(from_store(dir.path() + "/cache", r.root), fetched_load, *r.into))
                    return false;
                if (r.into == &empty) {
                    fetched_bytes = number_before(handler_log, "bytes\\), [0-9]+ of them ahead");
                    fetched_chunks = number_before(handler_log, "chunks fetched");
                    ws_pages = number_before(handler_log, "working-set pages installed");
                    packed = number_before(handler_log, "of those from");
                    pack_reads = number_before(handler_log, "reads of its packs");
                } else if (r.into == &empty_unpacked) {
                    unpacked_chunks = number_before(handler_log, "of them ahead");
                }
                return true;
            });
        if (!emptied) return 1;
        if (!restore(from_store(dir.path() + "/cache", store), fetched_load, warm)) return 1;
        warm_hits = number_before(handler_log, "chunks found there");
        warm_fetched = number_before(handler_log, "fetched into it");
        // The view made from the warm cache (the chunks the working set did not need fetched), and
        // found made without the pin.
        double made = 0, unpinned = 0;
        const std::string load = view_load(url, dir.path() + "/cache", "", &made);
        if (load.empty() || view_load(url, dir.path() + "/cache", "", &unpinned) != load) return 1;
        view_made.push_back(made);
        view_unpinned.push_back(unpinned);
        const std::string copy = dir.path() + "/copied.mem";
        std::filesystem::remove(copy);
        if (!restore(
                [&](Proc&) {
                    auto r = ember::testing::run_process(
                        {"/bin/cp", "--sparse=always", s.mem, copy}, std::chrono::minutes(5));
                    if (r.exit_code != 0) std::fprintf(stderr, "cp: %s\n", r.err.c_str());
                    return r.exit_code == 0;
                },
                file_load(s.state, copy, s.ws), copied))
            return 1;
    }
    // Over HTTP: nginx serves the folder (the store, and the memory file), behind the forwarder.
    ember::testing::Nginx web(dir, dir.path());
    if (!web.ready())
        return std::fprintf(stderr, "nginx did not start: %s\n", web.error_log().c_str()), 1;
    struct Remote {
        int rtt_ms;
        uint64_t gbit_per_second;  // the link's rate, shared by every connection; 0: no limit
        std::vector<double> empty = {}, empty_raw = {}, empty_unpacked = {}, warm = {},
                            unpinned = {}, copied = {};
        std::string where() const {
            return std::to_string(rtt_ms) + " ms away" +
                   (gbit_per_second > 0 ? " on " + std::to_string(gbit_per_second) + " Gbit/s"
                                        : std::string());
        }
    };
    std::vector<Remote> remote = {{.rtt_ms = 1, .gbit_per_second = 0},
                                  {.rtt_ms = 10, .gbit_per_second = 0},
                                  {.rtt_ms = 1, .gbit_per_second = 1}};
    for (auto& r : remote) {
        DelayProxy proxy(web.port(), std::chrono::milliseconds(r.rtt_ms),
                         r.gbit_per_second * 1000000000);
        const std::string url = "http://127.0.0.1:" + std::to_string(proxy.port());
        auto over_http = [&](const std::string& cache, const std::string& root = "store") {
            return through_uffd(url + "/" + root + "/snapshots/a.json", cache);
        };
        for (int i = 0; i < runs; ++i) {
            const bool emptied =
                in_turn(i,
                        {{"store", &r.empty},
                         {"unpacked-store", &r.empty_unpacked},
                         {"raw-store", &r.empty_raw}},
                        [&](const EmptyRow& row) {
                            std::filesystem::remove_all(dir.path() + "/cache");
                            return restore(over_http(dir.path() + "/cache", row.root), fetched_load,
                                           *row.into);
                        });
            if (!emptied) return std::fprintf(stderr, "%s\n", handler_log.c_str()), 1;
            if (!restore(over_http(dir.path() + "/cache"), fetched_load, r.warm)) return 1;
            const std::string manifest = url + "/store/snapshots/a.json";
            // A pinned view is found without a word to the store: only finding one unpinned is
            // timed here.
            const std::string load = view_load(manifest, dir.path() + "/cache");
            double unpinned = 0;
            if (load.empty() || view_load(manifest, dir.path() + "/cache", "", &unpinned) != load)
                return 1;
            r.unpinned.push_back(unpinned);
            const std::string copy = dir.path() + "/downloaded.mem";
            std::filesystem::remove(copy);
            if (!restore(
                    [&](Proc&) {
                        auto got = ember::testing::run_process(
                            {"/usr/bin/curl", "-sSf", "-o", copy,
                             url + "/" + std::filesystem::path(s.mem).filename().string()},
                            std::chrono::minutes(5));
                        if (got.exit_code != 0) std::fprintf(stderr, "curl: %s\n", got.err.c_str());
                        return got.exit_code == 0;
                    },
                    file_load(s.state, copy, s.ws), r.copied))
                return 1;
        }
    }

    const double base = percentile(local, 0.5);
    std::printf(
        "\nrestore to the first answer (the toucher's pass over 64 MiB of a 256 MiB guest), ms, "
        "median of %d; and the clone's anonymous memory then, its own (the page cache's pages of a "
        "mapped memory file are every clone's):\n\n| restore | ms | x local file | anonymous MiB "
        "|\n|---|---|---|---|\n",
        runs);
    auto row = [&](const std::string& name, const std::vector<double>& v) {
        std::printf("| %s | %.1f | %.2f | %.1f |\n", name.c_str(), percentile(v, 0.5),
                    percentile(v, 0.5) / base, percentile(anonymous_kib[&v], 0.5) / 1024);
    };
    row("local memory file, working set (File)", local);
    row("local memory file, working set, through ember-uffd", local_uffd);
    row("store in a local folder, empty cache, chunks as they are", empty_raw);
    row("store in a local folder, empty cache, compressed, no pack", empty_unpacked);
    row("store in a local folder, empty cache, compressed, the working set's pack", empty);
    row("store in a local folder, warm cache", warm);
    row("a warm host: the view made, found by its pin (File), from any store", viewed);
    row("copy the memory file on the host, then load", copied);
    for (const auto& r : remote) {
        const std::string at = r.where();
        row("store over HTTP " + at + ", empty cache, chunks as they are", r.empty_raw);
        row("store over HTTP " + at + ", empty cache, compressed, no pack", r.empty_unpacked);
        row("store over HTTP " + at + ", empty cache, compressed, the working set's pack", r.empty);
        row("store over HTTP " + at + ", warm cache", r.warm);
        row("copy the memory file over HTTP " + at + ", then load", r.copied);
    }
    std::printf(
        "making the view from a warm cache (a folder's store): %.1f ms; finding it made without "
        "the pin (the manifest read from the store): %.1f ms from the folder",
        percentile(view_made, 0.5), percentile(view_unpinned, 0.5));
    for (const auto& r : remote)
        std::printf(", %.1f ms over HTTP %s", percentile(r.unpinned, 0.5), r.where().c_str());
    std::printf("; medians of %d\n", runs);
    auto installed = [&](const std::vector<double>& v) { return percentile(install_ms[&v], 0.5); };
    std::printf(
        "the working set's install by ember-uffd, ms (medians): from the memory file %.1f; a "
        "folder's store, empty cache %.1f, warm %.1f",
        installed(local_uffd), installed(empty), installed(warm));
    for (const auto& r : remote)
        std::printf("; over HTTP %s, empty %.1f, warm %.1f", r.where().c_str(), installed(r.empty),
                    installed(r.warm));
    std::printf("\n");
    for (const auto& r : remote)
        std::printf(
            "%s: store (empty cache) / copy then load %.2f (no pack: %.2f; chunks as they are: "
            "%.2f); the pack / no pack %.2f; compressed / as they are %.2f\n",
            r.where().c_str(), percentile(r.empty, 0.5) / percentile(r.copied, 0.5),
            percentile(r.empty_unpacked, 0.5) / percentile(r.copied, 0.5),
            percentile(r.empty_raw, 0.5) / percentile(r.copied, 0.5),
            percentile(r.empty, 0.5) / percentile(r.empty_unpacked, 0.5),
            percentile(r.empty, 0.5) / percentile(r.empty_raw, 0.5));
    std::printf(
        "in a local folder, empty cache: the pack / no pack %.2f; compressed / as they are %.2f\n",
        percentile(empty, 0.5) / percentile(empty_unpacked, 0.5),
        percentile(empty, 0.5) / percentile(empty_raw, 0.5));
    std::printf(
        "the working set's chunks from the store: %llu from %llu reads of its pack, where "
        "without it %llu requests of a chunk each\n",
        static_cast<unsigned long long>(packed), static_cast<unsigned long long>(pack_reads),
        static_cast<unsigned long long>(unpacked_chunks));
    // push: "N stored (BYTES bytes; RAW before compression)".
    std::smatch stored;
    if (std::regex_search(first.out, stored,
                          std::regex(R"(stored \(([0-9]+) bytes; ([0-9]+) before compression)")))
        std::printf(
            "the snapshot's chunks in the store: %.1f MiB compressed (zstd level 3), %.1f MiB as "
            "they are (%.2fx)\n",
            std::stod(stored[1]) / 1048576, std::stod(stored[2]) / 1048576,
            std::stod(stored[2]) / std::max(1.0, std::stod(stored[1])));
    const uint64_t ws_bytes = ws_pages * 4096;
    std::printf(
        "\nfetched from the store before the first answer: %llu chunks, %llu KiB; the working set "
        "%llu KiB; ratio %.2f\n",
        static_cast<unsigned long long>(fetched_chunks),
        static_cast<unsigned long long>(fetched_bytes >> 10),
        static_cast<unsigned long long>(ws_bytes >> 10),
        ws_bytes > 0 ? static_cast<double>(fetched_bytes) / static_cast<double>(ws_bytes) : 0.0);
    std::printf(
        "a warm cache's restore: %llu chunks found in the cache, %llu fetched from the store\n",
        static_cast<unsigned long long>(warm_hits), static_cast<unsigned long long>(warm_fetched));
    const uint64_t chunks = number_before(second.out, "chunks of");
    const uint64_t shared = number_before(second.out, "shared with");
    std::printf(
        "two snapshots of one guest: the second's %llu chunks, %llu shared with the first's "
        "(%.0f%%)\n",
        static_cast<unsigned long long>(chunks), static_cast<unsigned long long>(shared),
        chunks > 0 ? 100.0 * static_cast<double>(shared) / static_cast<double>(chunks) : 0.0);
    return 0;
}
