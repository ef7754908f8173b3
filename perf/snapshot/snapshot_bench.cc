// perf/snapshot: restore latency by guest memory size, beside QEMU's -incoming, in one run.
//   load: PUT /snapshot/load (resume_vm) request to response;
//   load to guest: the same request to the restored guest's first output (its loop writes '.');
//   start to guest: fork/exec of a fresh ember to that first output (QEMU: fork/exec of
//     qemu -incoming from a migration file of the same guest to its first output);
//   create: PUT /snapshot/create of the paused guest (Full; memory file sparse).
// Then the fault tail of a restored guest's first pass over its memory, and what dirty tracking
// costs a guest's writes on 4 KiB and on 2 MiB pages.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "perf/percentile.h"
#include "perf/qemu_peer.h"
#include "perf/quick.h"
#include "perf/snapshot/bench_process.h"
#include "tests/support/ember_api.h"
#include "tests/support/ember_process.h"
#include "tests/support/huge_page_pool.h"
#include "tests/support/qmp_client.h"

namespace {

using namespace ember::testing;
using ember::perf::percentile;
using namespace ember::perf;

// The fault tail: a restored guest's first pass over 64 MiB, with the memory file cold (page
// cache dropped) and warm, against a later pass over the same, now resident, pages. Then the same
// restores from the load request on, lazily and with the working set the first pass recorded, as
// REAP measured them: the working set brought in before the vCPU runs against a fault per page.
int touch_64mib(TempDir& dir, int runs, bool quick) {
    const std::string state = dir.path() + "/t.state", mem = dir.path() + "/t.mem",
                      sock = dir.path() + "/t.sock", ws = dir.path() + "/t.ws";
    {
        Proc a;
        start_ember(a, sock);
        auto c = EmberApi::connect(sock);
        if (!c) return 1;
        if (!boot_toucher(*c, a, R"({"vcpu_count": 1, "mem_size_mib": 256})")) return 1;
        if (!call(*c, "PATCH", "/vm", R"({"state": "Paused"})") ||
            !call(*c, "PUT", "/snapshot/create",
                  R"({"snapshot_path": ")" + state + R"(", "mem_file_path": ")" + mem + "\"}"))
            return 1;
    }
    const std::string lazy_load =
        R"({"snapshot_path": ")" + state +
        R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" + mem +
        R"("}, "resume_vm": true})";
    const std::string ws_load =
        lazy_load.substr(0, lazy_load.size() - 1) + R"(, "working_set_path": ")" + ws + "\"}";
    // The keystrokes that start each of the toucher's passes over its memory.
    const std::string pass_keys = R"({"action_type": "SendCtrlAltDel"})";
    // One restore: from the load request to the end of the first pass (and a second pass, timed
    // into `resident`, when asked); the working set recorded after it when `record` is set.
    auto restore = [&](const std::string& load, double& load_to_pass, double* pass,
                       std::vector<double>* resident, bool record) -> bool {
        Proc b;
        start_ember(b, sock);
        auto c = EmberApi::connect(sock);
        if (!c) return false;
        auto t0 = Clock::now();
        if (!call(*c, "PUT", "/snapshot/load", load)) return false;
        auto t = Clock::now();
        if (!call(*c, "PUT", "/actions", pass_keys)) return false;
        if (!wait_char(b, 'T')) return std::fprintf(stderr, "no first pass\n"), false;
        load_to_pass = ms_since(t0);
        if (pass) *pass = ms_since(t);
        if (resident) {
            t = Clock::now();
            if (!call(*c, "PUT", "/actions", pass_keys)) return false;
            if (!wait_char(b, 'T')) return std::fprintf(stderr, "no second pass\n"), false;
            resident->push_back(ms_since(t));
        }
        if (record) {
            if (!call(*c, "PUT", "/snapshot/working-set", R"({"working_set_path": ")" + ws + "\"}"))
                return false;
        }
        return true;
    };
    std::vector<double> cold, warm, resident, total[2][2];  // total[working set][cold]
    double load_to_pass = 0, pass = 0;
    for (int i = 0; i < (quick ? 1 : std::max(3, runs / 4)); ++i) {
        for (bool drop : {true, false}) {
            if (drop) drop_page_cache();
            if (!restore(lazy_load, load_to_pass, &pass, &resident, i == 0 && !drop)) return 1;
            (drop ? cold : warm).push_back(pass);
            total[0][drop ? 1 : 0].push_back(load_to_pass);
        }
    }
    for (int i = 0; i < (quick ? 1 : std::max(3, runs / 4)); ++i) {
        for (bool drop : {true, false}) {
            if (drop) drop_page_cache();
            if (!restore(ws_load, load_to_pass, nullptr, nullptr, false)) return 1;
            total[1][drop ? 1 : 0].push_back(load_to_pass);
        }
    }
    std::printf(
        "\ntouching 64 MiB after restore (256 MiB guest), ms, median / p90; the guest's own reads "
        "run\n"
        "emulated here, so the fault tail is the difference from the resident pass:\n\n");
    std::printf(
        "| first pass, memory file cold | first pass, warm | pass over resident pages | cold tail "
        "| warm tail |\n");
    std::printf("|---|---|---|---|---|\n");
    std::printf("| %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.1f | %.1f |\n",
                percentile(cold, 0.5), percentile(cold, 0.9), percentile(warm, 0.5),
                percentile(warm, 0.9), percentile(resident, 0.5), percentile(resident, 0.9),
                percentile(cold, 0.5) - percentile(resident, 0.5),
                percentile(warm, 0.5) - percentile(resident, 0.5));
    std::printf(
        "\nthe same restores, load request to the end of the first pass, ms, median / p90; the "
        "working set\nis what a lazy restore's first pass touched (%lld KiB):\n\n",
        working_set_bytes(ws) / 1024);
    std::printf(
        "| memory file | lazy | with the working set | working set/lazy |\n|---|---|---|---|\n");
    for (int c = 1; c >= 0; --c)
        std::printf("| %s | %.1f / %.1f | %.1f / %.1f | %.2f |\n", c ? "cold" : "warm",
                    percentile(total[0][c], 0.5), percentile(total[0][c], 0.9),
                    percentile(total[1][c], 0.5), percentile(total[1][c], 0.9),
                    percentile(total[1][c], 0.5) / percentile(total[0][c], 0.5));
    return 0;
}

// What dirty tracking costs a guest's writes, on 4 KiB and on 2 MiB pages: the toucher's first
// fill of 64 MiB (16384 pages, one write each) from InstanceStart, with track_dirty_pages off and
// on, and the Diff snapshot of the pages written. With tracking on, KVM maps the guest at 4 KiB
// and takes a write fault to log each page; that is the cost, and on 2 MiB pages it also gives up
// the large mappings.
int dirty_tracking_cost(TempDir& dir, int runs, bool quick) {
    constexpr uint64_t kGuestMib = 256;
    HugePagePool pool;
    const bool huge_ok = pool.ensure(kGuestMib / 2);
    const std::string sock = dir.path() + "/d.sock";
    std::printf(
        "\ndirty tracking: a %llu MiB guest's first write to each of 64 MiB of pages, ms from "
        "InstanceStart,\nmedian / p90, and the Diff snapshot of them:\n\n",
        static_cast<unsigned long long>(kGuestMib));
    std::printf(
        "| pages | tracking off | tracking on | on/off | create Diff |\n|---|---|---|---|---|\n");
    struct PageSize {
        std::string_view huge_pages;  // machine-config's value
        const char* label;
    };
    for (const auto& [pages, label] : {PageSize{"None", "4 KiB"}, PageSize{"2M", "2 MiB"}}) {
        if (pages != "None" && !huge_ok) {
            std::printf("| %s | - | - | - | - |\n", label);
            std::fprintf(stderr, "dirty tracking: the host could not give %llu free 2 MiB pages\n",
                         static_cast<unsigned long long>(kGuestMib / 2));
            continue;
        }
        std::vector<double> fill[2], diff;
        for (int i = 0; i < (quick ? 1 : std::max(3, runs / 4)); ++i) {
            for (int track = 0; track < 2; ++track) {
                Proc a;
                start_ember(a, sock);
                auto c = EmberApi::connect(sock);
                if (!c) return 1;
                auto filled = boot_toucher(
                    *c, a,
                    "{\"vcpu_count\": 1, \"mem_size_mib\": " + std::to_string(kGuestMib) +
                        ", \"huge_pages\": \"" + std::string(pages) +
                        "\", \"track_dirty_pages\": " + (track ? "true" : "false") + "}");
                if (!filled) return 1;
                fill[track].push_back(*filled);
                if (!track) continue;
                if (!call(*c, "PATCH", "/vm", R"({"state": "Paused"})")) return 1;
                auto t = Clock::now();
                if (!call(*c, "PUT", "/snapshot/create",
                          R"({"snapshot_type": "Diff", "snapshot_path": ")" + dir.path() +
                              R"(/d.state", "mem_file_path": ")" + dir.path() + "/d.mem\"}"))
                    return 1;
                diff.push_back(ms_since(t));
            }
        }
        std::printf("| %s | %.1f / %.1f | %.1f / %.1f | %.2f | %.1f / %.1f |\n", label,
                    percentile(fill[0], 0.5), percentile(fill[0], 0.9), percentile(fill[1], 0.5),
                    percentile(fill[1], 0.9), percentile(fill[1], 0.5) / percentile(fill[0], 0.5),
                    percentile(diff, 0.5), percentile(diff, 0.9));
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string qemu;
    // Quick: every size and every column, each timed once or twice (perf/README.md).
    const bool quick = ember::perf::quick_mode();
    int runs = quick ? 2 : 20;
    const int creates = quick ? 1 : 5;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--qemu" && i + 1 < argc)
            qemu = argv[++i];
        else if (a == "--runs" && i + 1 < argc)
            runs = std::stoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: snapshot_bench [--qemu PATH] [--runs N]\n");
            return 2;
        }
    }
    TempDir dir;
    std::printf("perf/snapshot: %d restores per size, milliseconds (median / p90)\n\n", runs);
    std::printf(
        "| guest | load | load to guest | start to guest | create Full | create Diff | QEMU start "
        "to guest | "
        "ember/QEMU |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (uint32_t mib : {128u, 1024u, 4096u}) {
        const std::string state = dir.path() + "/vm.state", mem = dir.path() + "/vm.mem";
        const std::string sock = dir.path() + "/a.sock";
        std::vector<double> create_ms, diff_ms;
        {
            Proc a;
            start_ember(a, sock);
            auto c = EmberApi::connect(sock);
            if (!c) return std::fprintf(stderr, "ember A: %s\n", c.error().message.c_str()), 1;
            if (!call(*c, "PUT", "/machine-config",
                      "{\"vcpu_count\": 1, \"track_dirty_pages\": true, \"mem_size_mib\": " +
                          std::to_string(mib) + "}") ||
                !call(
                    *c, "PUT", "/boot-source",
                    "{\"kernel_image_path\": \"" + std::string(EMBER_GUEST_DIR) + "/dots.elf\"}") ||
                !call(*c, "PUT", "/actions", R"({"action_type": "InstanceStart"})"))
                return 1;
            if (!wait_char(a, '.'))
                return std::fprintf(stderr, "ember A: the guest printed nothing\n"), 1;
            if (!call(*c, "PATCH", "/vm", R"({"state": "Paused"})")) return 1;
            for (int i = 0; i < creates; ++i) {
                auto t = Clock::now();
                if (!call(*c, "PUT", "/snapshot/create",
                          R"({"snapshot_type": "Full", "snapshot_path": ")" + state +
                              R"(", "mem_file_path": ")" + mem + "\"}"))
                    return 1;
                create_ms.push_back(ms_since(t));
            }
            // Diff: the guest runs a little between snapshots, as between two function calls.
            for (int i = 0; i < creates; ++i) {
                if (!call(*c, "PATCH", "/vm", R"({"state": "Resumed"})")) return 1;
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                if (!call(*c, "PATCH", "/vm", R"({"state": "Paused"})")) return 1;
                auto t = Clock::now();
                if (!call(*c, "PUT", "/snapshot/create",
                          R"({"snapshot_type": "Diff", "snapshot_path": ")" + state +
                              R"(.diff", "mem_file_path": ")" + mem + ".diff\"}"))
                    return 1;
                diff_ms.push_back(ms_since(t));
            }
        }
        std::vector<double> load_ms, to_guest_ms, start_ms, qemu_ms;
        const std::string load = R"({"snapshot_path": ")" + state +
                                 R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" +
                                 mem + R"("}, "resume_vm": true})";
        for (int i = 0; i < runs; ++i) {
            const std::string bsock = dir.path() + "/b.sock";
            Proc b;
            auto t0 = Clock::now();
            start_ember(b, bsock);
            auto c = EmberApi::connect(bsock);
            if (!c) return std::fprintf(stderr, "ember B: %s\n", c.error().message.c_str()), 1;
            auto t1 = Clock::now();
            if (!call(*c, "PUT", "/snapshot/load", load)) return 1;
            load_ms.push_back(ms_since(t1));
            if (!wait_char(b, '.'))
                return std::fprintf(stderr, "ember B: the restored guest printed nothing\n"), 1;
            to_guest_ms.push_back(ms_since(t1));
            start_ms.push_back(ms_since(t0));
        }
        // A size QEMU cannot hold here is skipped and said in its row, measured as it would start.
        // ember maps its guest with MAP_NORESERVE (core/memory/guest_memory.cc), so its columns
        // are measured at every size.
        const std::string qemu_skipped = qemu.empty() ? "" : ember::perf::qemu_cannot_fit(mib);
        if (!qemu.empty() && qemu_skipped.empty()) {
            // The same loop under QEMU, migrated to a file once, then started from it.
            const std::string bios = dir.path() + "/dots.bios", mig = dir.path() + "/vm.mig",
                              qsock = dir.path() + "/q.sock", qerr = dir.path() + "/q.err";
            dir.write("dots.bios",
                      ember::perf::bios_image(read_file(PEER_BLOB_DIR "/peer_dots.bin")));
            const auto base = ember::perf::qemu_microvm(qemu, bios, mib);
            {
                Proc q;
                // Migrated while running (so the destination runs it), its console discarded.
                auto args = base;
                args.insert(args.end(),
                            {"-serial", "null", "-qmp", "unix:" + qsock + ",server=on,wait=off"});
                ::unlink(qsock.c_str());
                start(q, args, qerr);
                auto qmp = QmpClient::connect(qsock, 25000);
                if (!qmp)
                    return std::fprintf(stderr, "QEMU: %s: %s\n", qmp.error().message.c_str(),
                                        last_line_of(qerr).c_str()),
                           1;
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
                (void)qmp->call(R"({"execute": "migrate", "arguments": {"uri": "exec:cat > )" +
                                mig + "\"}}");
                for (int i = 0; i < 10000; ++i) {
                    auto r = qmp->call(R"({"execute": "query-migrate"})");
                    if (!r || r->find("completed") != std::string::npos) break;
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                }
            }
            for (int i = 0; i < runs; ++i) {
                Proc q;
                auto args = base;
                args.insert(args.end(), {"-serial", "stdio", "-incoming", "exec:cat " + mig});
                auto t0 = Clock::now();
                start(q, args, qerr);
                if (!wait_char(q, '.'))
                    return std::fprintf(stderr, "QEMU -incoming: the guest printed nothing\n"), 1;
                qemu_ms.push_back(ms_since(t0));
            }
        }
        std::string guest =
            mib >= 1024 ? std::to_string(mib / 1024) + " GiB" : std::to_string(mib) + " MiB";
        double q50 = percentile(qemu_ms, 0.5);
        std::string qemu_cell = "-", ratio_cell = "-";
        if (!qemu_skipped.empty()) {
            qemu_cell = "n/a (" + qemu_skipped + ")";
            ratio_cell = "n/a";
        } else if (q50 > 0) {
            qemu_cell = std::to_string(q50).substr(0, 6) + " / " +
                        std::to_string(percentile(qemu_ms, 0.9)).substr(0, 6);
            ratio_cell = std::to_string(percentile(start_ms, 0.5) / q50).substr(0, 5);
        }
        std::printf(
            "| %s | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.1f / %.1f | %.1f / %.1f | %s | %s "
            "|\n",
            guest.c_str(), percentile(load_ms, 0.5), percentile(load_ms, 0.9),
            percentile(to_guest_ms, 0.5), percentile(to_guest_ms, 0.9), percentile(start_ms, 0.5),
            percentile(start_ms, 0.9), percentile(create_ms, 0.5), percentile(create_ms, 0.9),
            percentile(diff_ms, 0.5), percentile(diff_ms, 0.9), qemu_cell.c_str(),
            ratio_cell.c_str());
        std::fflush(stdout);
    }
    if (int rc = touch_64mib(dir, runs, quick); rc != 0) return rc;
    return dirty_tracking_cost(dir, runs, quick);
}
