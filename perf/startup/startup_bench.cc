// perf/startup: ember beside QEMU microvm and kvmtool, interleaved in one run.
//   (a) exec to first guest instruction: the guest's first instruction writes '!' to COM1; the
//       time is when that byte reaches the harness's pipe.
//   (b) exec to first serial byte of a guest that polls the UART's line status first, as a
//       console driver does (ember: tests/guest/hello; peers: the same in 16-bit code).
//   ember's start by phase, in runs of (a) of its own with its log at Info: exec to main (main's
//   CLOCK_MONOTONIC time, which ember logs, less the fork's), then each step ember marks
//   (core/base/phase_times.h), then the guest's first instruction.
//   Memory of the idle VMM with a 128 MiB guest, from /proc/PID/smaps, guest RAM excluded.
// Peers are optional: --qemu PATH (Debian's qemu-system-x86_64) and --lkvm PATH (kvmtool built
// from its source outside this repository).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "perf/percentile.h"
#include "perf/phase_line.h"
#include "perf/qemu_peer.h"
#include "perf/quick.h"
#include "tests/support/ember_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using ember::perf::percentile;
using ember::testing::TempDir;

struct Vmm {
    std::string name;
    std::vector<std::string> first_out;  // argv for (a)
    std::vector<std::string> hello;      // argv for (b) and for memory
};

struct Running {
    pid_t pid;
    int out_fd;
};

Running start(const std::vector<std::string>& argv) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    pid_t pid = ember::testing::spawn(argv, devnull, fds[1], devnull);
    ::close(devnull);
    ::close(fds[1]);
    return {pid, fds[0]};
}

void reap(Running r) {
    ::kill(r.pid, SIGKILL);
    ::waitpid(r.pid, nullptr, 0);
    ::close(r.out_fd);
}

// A silence that only a hang outlasts: emulated (tests/nested/run), a VMM's first start from cold
// files takes seconds.
constexpr int kHangMs = 120000;

// Waits for `marker` on stdout; returns the microseconds from t0, or nothing once it stays silent
// for kHangMs.
std::optional<double> wait_for(const Running& r, const std::string& marker, Clock::time_point t0) {
    std::string seen;
    pollfd p{r.out_fd, POLLIN, 0};
    while (::poll(&p, 1, kHangMs) > 0) {
        char buf[512];
        ssize_t n = ::read(r.out_fd, buf, sizeof buf);
        if (n <= 0) return std::nullopt;
        seen.append(buf, static_cast<size_t>(n));
        if (seen.find(marker) != std::string::npos)
            return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    }
    return std::nullopt;
}

std::optional<double> time_to(const std::vector<std::string>& argv, const std::string& marker) {
    auto t0 = Clock::now();
    Running r = start(argv);
    auto us = wait_for(r, marker, t0);
    reap(r);
    return us;
}

struct Memory {
    double rss_kib = 0, pss_kib = 0, uss_kib = 0, anon_kib = 0;
};

// Sums smaps over every mapping smaller than the guest's RAM (128 MiB): guest memory excluded.
Memory smaps_without_guest(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
    Memory m;
    std::string line;
    bool counting = false;
    const double guest_kib = 120.0 * 1024;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string key;
        double kib = 0;
        words >> key >> kib;
        if (key == "Size:") counting = kib < guest_kib;
        if (!counting) continue;
        if (key == "Rss:") m.rss_kib += kib;
        if (key == "Pss:") m.pss_kib += kib;
        if (key == "Private_Clean:" || key == "Private_Dirty:") m.uss_kib += kib;
        if (key == "Anonymous:") m.anon_kib += kib;
    }
    return m;
}

std::optional<Memory> idle_memory(const std::vector<std::string>& argv, const std::string& marker) {
    Running r = start(argv);
    auto up = wait_for(r, marker, Clock::now());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::optional<Memory> m;
    if (up) m = smaps_without_guest(r.pid);
    reap(r);
    return m;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// One start of ember by phase: from the fork to main (exec and dynamic linking), each step's end
// from ember's log line ("phases, us from main (at M on CLOCK_MONOTONIC): step us, ..."), and the
// guest's first instruction; every time in microseconds from the fork.
std::optional<ember::perf::PhaseLine> phases_of(std::vector<std::string> argv,
                                                const std::string& log) {
    ::unlink(log.c_str());
    for (size_t i = 0; i + 1 < argv.size(); ++i)
        if (argv[i] == "--level") argv[i + 1] = "Info";
    argv.insert(argv.begin() + 1, {"--log-path", log});
    const auto t0 = Clock::now();
    Running r = start(argv);
    auto first = wait_for(r, "!", t0);
    // The line comes once the VM runs, beside the guest; a start that never logs it is a failure.
    std::optional<ember::perf::PhaseLine> line;
    for (int i = 0; i < 5000 && !line; ++i) {
        line = ember::perf::phase_line(read_file(log), "main");
        if (!line) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    reap(r);
    if (!first || !line) return std::nullopt;
    const double fork_us = std::chrono::duration<double, std::micro>(t0.time_since_epoch()).count();
    const double main_us = static_cast<double>(line->origin_us) - fork_us;
    ember::perf::PhaseLine p;
    p.origin_us = static_cast<long long>(fork_us);
    p.ends.emplace_back("exec and dynamic linking, to main", main_us);
    for (const auto& [step, end] : line->ends) p.ends.emplace_back(step, main_us + end);
    p.ends.emplace_back("the guest's first instruction ('!' read from its pipe)", *first);
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    int runs = ember::perf::quick_mode() ? 2 : 30;
    std::string qemu, lkvm;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--runs" && i + 1 < argc)
            runs = std::stoi(argv[++i]);
        else if (a == "--qemu" && i + 1 < argc)
            qemu = argv[++i];
        else if (a == "--lkvm" && i + 1 < argc)
            lkvm = argv[++i];
        else {
            std::fprintf(stderr, "usage: startup_bench [--runs N] [--qemu PATH] [--lkvm PATH]\n");
            return 2;
        }
    }

    TempDir dir;
    const std::string guests = EMBER_GUEST_DIR;
    auto ember_config = [&](const std::string& guest, int mib) {
        return dir.write(guest + ".json",
                         ember::testing::guest_config(guests + "/" + guest + ".elf", mib));
    };
    std::vector<Vmm> vmms;
    vmms.push_back({"ember",
                    {EMBER_BINARY, "--no-api", "--level", "Warning", "--config-file",
                     ember_config("first_out", 128)},
                    {EMBER_BINARY, "--no-api", "--level", "Warning", "--config-file",
                     ember_config("idle", 128)}});
    const std::string blob_dir = PEER_BLOB_DIR;
    const std::string first_blob = read_file(blob_dir + "/peer_first_out.bin");
    const std::string hello_blob = read_file(blob_dir + "/peer_hello.bin");
    if (!qemu.empty()) {
        auto q = [&](const std::string& bios) {
            auto argv = ember::perf::qemu_microvm(qemu, bios, 128);
            argv.insert(argv.end(), {"-serial", "stdio"});
            return argv;
        };
        vmms.push_back({"qemu-microvm",
                        q(dir.write("first_out.bios", ember::perf::bios_image(first_blob))),
                        q(dir.write("hello.bios", ember::perf::bios_image(hello_blob)))});
    }
    if (!lkvm.empty()) {
        auto k = [&](const std::string& flat) {
            return std::vector<std::string>{lkvm, "run", "-k", flat, "-m", "128", "-c", "1"};
        };
        vmms.push_back({"kvmtool", k(dir.write("first_out.flat", first_blob)),
                        k(dir.write("hello.flat", hello_blob))});
    }

    // The ember hello guest prints the same line as the peers' hello blob; idle prints "idle".
    std::map<std::string, std::vector<double>> first_instruction, first_byte;
    for (int run = 0; run < runs; ++run) {
        for (const auto& v : vmms) {
            if (auto us = time_to(v.first_out, "!")) first_instruction[v.name].push_back(*us);
            auto hello_argv = v.hello;
            if (v.name == "ember") hello_argv.back() = ember_config("hello", 128);
            if (auto us = time_to(hello_argv, "h")) first_byte[v.name].push_back(*us);
        }
    }

    std::printf("perf/startup: %d interleaved runs each, microseconds from fork/exec\n\n", runs);
    std::printf(
        "| VMM | (a) first instruction median | p90 | (b) first serial byte median | p90 |\n");
    std::printf("|---|---|---|---|---|\n");
    for (const auto& v : vmms) {
        auto& a = first_instruction[v.name];
        auto& b = first_byte[v.name];
        if (a.empty() || b.empty()) {
            std::printf("| %s | failed | | failed | |\n", v.name.c_str());
            continue;
        }
        std::printf("| %s | %.0f | %.0f | %.0f | %.0f |\n", v.name.c_str(), percentile(a, 0.5),
                    percentile(a, 0.9), percentile(b, 0.5), percentile(b, 0.9));
    }
    if (!first_instruction["ember"].empty()) {
        std::printf("\nratios, ember / peer (medians; lower is better):\n");
        for (const auto& v : vmms) {
            if (v.name == "ember" || first_instruction[v.name].empty() ||
                first_byte[v.name].empty())
                continue;
            std::printf("  vs %-13s (a) %.3f   (b) %.3f\n", v.name.c_str(),
                        percentile(first_instruction["ember"], 0.5) /
                            percentile(first_instruction[v.name], 0.5),
                        percentile(first_byte["ember"], 0.5) / percentile(first_byte[v.name], 0.5));
        }
    }

    // Where ember's start goes, in runs of its own: its log at Info costs a few writes more.
    std::vector<ember::perf::PhaseLine> phased;
    for (int run = 0; run < runs; ++run)
        if (auto p = phases_of(vmms.front().first_out, dir.path() + "/phases.log"))
            phased.push_back(std::move(*p));
    std::printf(
        "\nember's start by phase, %zu of %d runs of (a) with its log at Info (medians; each step "
        "ends when the next begins):\n\n| step | ends, us from fork/exec | takes, us "
        "|\n|---|---|---|\n",
        phased.size(), runs);
    if (phased.empty() || phased.size() < static_cast<size_t>(runs)) {
        std::printf("| failed: a start gave no phase line | | |\n");
        return 1;
    }
    ember::perf::print_phase_rows(phased);

    std::printf("\nidle VMM memory, 128 MiB guest, guest RAM mappings excluded (KiB):\n\n");
    std::printf("| VMM | RSS | PSS | USS (private) | anonymous |\n|---|---|---|---|---|\n");
    for (const auto& v : vmms) {
        auto m = idle_memory(v.hello, v.name == "ember" ? "idle" : "hello");
        if (!m) {
            std::printf("| %s | failed | | | |\n", v.name.c_str());
            continue;
        }
        std::printf("| %s | %.0f | %.0f | %.0f | %.0f |\n", v.name.c_str(), m->rss_kib, m->pss_kib,
                    m->uss_kib, m->anon_kib);
    }
    return 0;
}
