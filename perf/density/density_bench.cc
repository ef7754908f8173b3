// perf/density: how many idle clones of one snapshot this host holds, what each one costs, and how
// fast they come. Every clone is its own ember restoring the same snapshot of a 128 MiB guest,
// tests/guest/generation_id.c: it halts with interrupts on, and the restore wakes it with the
// VMGenID notification, on which it prints "ged interrupt", its first answer. A freestanding guest,
// because guest user space cannot run on every host's KVM and an idle Linux costs emulated CPU:
// these are ember's and the kernel's costs, not a function's.
//
//   fill:  clones restored 8 at a time and kept, up to K = 1, 10, 100, 250, 500, 1000 (--max K),
//          or until a restore fails, and then what failed is said. At each K: load -> first answer
//          p50/p99 of the clones that step added; per clone, means over all: USS outside guest RAM
//          (it falls with K, as clean library pages are shared), the guest's private pages, page
//          tables, threads and fds (from /proc); and what each clone the step added cost the host
//          as a whole, from MemAvailable and from a memory cgroup the clones are charged to (the
//          kernel's share, KVM's per-VM memory among it, apart).
//   peer:  (--qemu PATH) 10 QEMU clones restored with -incoming from a migration file of an idle
//          guest, with the same figures, and ember/QEMU at K = 10.
//   rate:  restores per second with 1, 2 and 8 at a time, each clone kept until the run ends.
//   ready: the load into an ember that said its VM was ready (vmm/machine/prepared_vm.h), into
//          one loaded as soon as its API answers, and into one with --no-prepare-vm (ember before
//          it prepared a VM), interleaved: the load call and load -> answer, p50 and p99.
//   pool:  a restore through the client library's pool of ready embers (api/client/ready_pool.h:
//          take one, PUT /snapshot/load through cpp-httplib) beside the same load written by hand
//          on a raw socket into an ember taken from the same pool, interleaved, each ember having
//          said its VM was ready: take to the guest running (the load's 204, resume_vm), p50 and
//          p99, and their ratio.
//
// --svg FILE draws load -> answer and the cost per clone against K. --pool RUNS runs only the
// pool against the raw socket, RUNS restores each way. --ember PATH runs clones of another ember
// (an earlier build), to set its figures beside this one's.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/client/ready_pool.h"
#include "api/json/api_bodies.h"
#include "perf/percentile.h"
#include "perf/phase_line.h"
#include "perf/qemu_peer.h"
#include "perf/quick.h"
#include "tests/support/ember_process.h"
#include "tests/support/qmp_client.h"
#include "tests/support/uds_http.h"

namespace {

using namespace ember::testing;
using Clock = std::chrono::steady_clock;
using ember::perf::percentile;

constexpr int kGuestMib = 128;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// One VMM process (ember, or the peer's QEMU) and its console. SIGKILL leaves its socket file
// behind, so that goes with the process.
struct Clone {
    pid_t pid = -1;
    ember::UniqueFd console;
    std::string sock, err;
    Clone() = default;
    Clone(const Clone&) = delete;
    Clone& operator=(const Clone&) = delete;
    ~Clone() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (!sock.empty()) ::unlink(sock.c_str());
    }
};

// Starts `argv` as `c`, its stdout on c.console and its stderr in `err`, removing `sock` when it
// goes; false (with the reason in `why`) when the process could not be made.
bool start_process(Clone& c, const std::vector<std::string>& argv, const std::string& sock,
                   const std::string& err, std::string& why) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return why = std::string("pipe: ") + std::strerror(errno), false;
    ember::UniqueFd read_end(fds[0]), write_end(fds[1]);
    ember::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    ember::UniqueFd err_file(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!devnull.valid() || !err_file.valid())
        return why = std::string("open: ") + std::strerror(errno), false;
    c.sock = sock;
    c.err = err;
    c.pid = spawn(argv, devnull.get(), write_end.get(), err_file.get());
    if (c.pid < 0) return why = std::string("fork: ") + std::strerror(errno), false;
    c.console = std::move(read_end);
    return true;
}

// How a clone's ember starts and when its load is sent.
enum class Start {
    AtOnce,     // as soon as its API answers: the VM it prepares has no irqchip yet
    Ready,      // once it says its VM is ready (irqchip, PIT and vCPU 0 made while it waited)
    NoPrepare,  // --no-prepare-vm, at once: ember as it was before it prepared a VM
};

// The ember the clones run: this build's, or --ember PATH's (an earlier build, to set beside it).
std::string ember_binary = EMBER_BINARY;

bool start_ember(Clone& c, const std::string& sock, const std::string& err, std::string& why,
                 Start how = Start::AtOnce) {
    std::vector<std::string> argv{ember_binary, "--api-sock", sock, "--level",
                                  how == Start::Ready ? "Info" : "Error"};
    if (how == Start::NoPrepare) argv.emplace_back("--no-prepare-vm");
    return start_process(c, argv, sock, err, why);
}

std::string last_line(const std::string& text) {
    auto end = text.find_last_not_of("\r\n");
    if (end == std::string::npos) return "";
    const auto newline = text.find_last_of('\n', end);
    const size_t from = newline == std::string::npos ? 0 : newline + 1;
    return text.substr(from, end + 1 - from);
}

// How `c` ended, with its stderr's last line, or "" while it runs.
std::string exit_of(Clone& c) {
    int status = 0;
    if (::waitpid(c.pid, &status, WNOHANG) != c.pid) return "";
    c.pid = -1;
    return "it exited (" +
           (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                : "status " + std::to_string(WEXITSTATUS(status))) +
           "): " + last_line(read_file(c.err));
}

struct LoadTimes {
    double call_ms;    // the load request to its 204: the guest is running
    double answer_ms;  // the load request to the guest's first answer
    // The load's steps, from ember's log (an ember started Ready logs at Info): nothing otherwise.
    std::optional<ember::perf::PhaseLine> phases;
};

// Restores `load` into a fresh ember started `how` and waits for the guest's first answer: the
// times from the load request, or nothing, with what went wrong in `why`.
std::optional<LoadTimes> restore_timed(Clone& c, const std::string& dir, int n,
                                       const std::string& load, Start how, std::string& why) {
    const std::string sock = dir + "/c" + std::to_string(n) + ".sock";
    if (!start_ember(c, sock, dir + "/c" + std::to_string(n) + ".err", why, how))
        return std::nullopt;
    auto client = UdsHttpClient::connect(sock, 30000);
    if (!client) {
        why = exit_of(c);
        if (why.empty()) why = "no API socket within 30 s: " + client.error().message;
        return std::nullopt;
    }
    if (how == Start::Ready) {
        const auto deadline = Clock::now() + std::chrono::seconds(30);
        while (read_file(c.err).find("a KVM VM is ready") == std::string::npos) {
            if (Clock::now() > deadline) {
                why = exit_of(c);
                if (why.empty())
                    why = "never said its VM was ready: " + last_line(read_file(c.err));
                return std::nullopt;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    const auto t = Clock::now();
    auto r = client->request("PUT", "/snapshot/load", load);
    const double call_ms = ms_since(t);
    if (!r || r->status != 204) {
        why = exit_of(c);
        if (why.empty())
            why = "PUT /snapshot/load: " +
                  (r ? std::to_string(r->status) + " " + r->body : r.error().message);
        return std::nullopt;
    }
    const std::string seen = read_until(c.console.get(), "ged interrupt", std::chrono::seconds(60));
    if (seen.find("ged interrupt") == std::string::npos) {
        why = exit_of(c);
        if (why.empty()) why = "no answer from the guest within 60 s";
        return std::nullopt;
    }
    LoadTimes times{call_ms, ms_since(t), std::nullopt};
    // Logged once the client has its answer, beside the guest.
    for (int i = 0; how == Start::Ready && i < 5000 && !times.phases; ++i) {
        times.phases = ember::perf::phase_line(read_file(c.err), "PUT /snapshot/load");
        if (!times.phases) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (how == Start::Ready && !times.phases) {
        why = "no phase line in its log: " + last_line(read_file(c.err));
        return std::nullopt;
    }
    return times;
}

// The ms from the load request to the guest's first answer, the ember started as a host agent
// that keeps none ready starts it.
std::optional<double> restore(Clone& c, const std::string& dir, int n, const std::string& load,
                              std::string& why) {
    auto times = restore_timed(c, dir, n, load, Start::AtOnce, why);
    if (!times) return std::nullopt;
    return times->answer_ms;
}

// The peer: a fresh QEMU restored with -incoming from `migration`; the ms from its start until
// QMP says the guest runs, or nothing, with what went wrong in `why`.
std::optional<double> restore_qemu(Clone& c, const std::string& dir, int n,
                                   const std::vector<std::string>& qemu_vm,
                                   const std::string& migration, std::string& why) {
    const std::string sock = dir + "/q" + std::to_string(n) + ".sock";
    auto argv = qemu_vm;
    argv.insert(argv.end(), {"-serial", "null", "-qmp", "unix:" + sock + ",server=on,wait=off",
                             "-incoming", "exec:cat " + migration});
    const auto t = Clock::now();
    if (!start_process(c, argv, sock, dir + "/q" + std::to_string(n) + ".err", why))
        return std::nullopt;
    auto qmp = QmpClient::connect(sock, 30000);
    if (!qmp) {
        why = exit_of(c);
        if (why.empty()) why = qmp.error().message;
        return std::nullopt;
    }
    for (int i = 0; i < 30000; ++i) {
        auto r = qmp->call(R"({"execute": "query-status"})");
        if (!r) return why = r.error().message, std::nullopt;
        if (r->find("\"running\"") != std::string::npos) return ms_since(t);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    why = "the guest never ran";
    return std::nullopt;
}

// Where a clone's USS outside guest RAM is: the program's own file, the shared libraries', the
// heap, the main thread's stack, other anonymous memory (other threads' stacks, malloc's arenas)
// and the rest (KVM's vCPU mapping, files).
enum Part { kBinary, kLibraries, kHeap, kMainStack, kAnonymous, kOther, kParts };
constexpr const char* kPartNames[kParts] = {"binary",     "libraries",       "heap",
                                            "main stack", "other anonymous", "other"};

Part part_of(const std::string& name, const std::string& binary) {
    if (name.empty()) return kAnonymous;
    if (name == "[heap]") return kHeap;
    if (name == "[stack]") return kMainStack;
    if (!binary.empty() && name == binary) return kBinary;
    if (name.find(".so") != std::string::npos) return kLibraries;
    return kOther;
}

// What one clone costs, from /proc.
struct CloneCost {
    long long outside_kib = 0;  // USS outside guest RAM: ember's own
    long long part_kib[kParts] = {};
    long long guest_kib = 0;  // the guest's private pages
    long long pte_kib = 0;
    long long threads = 0;
    long long fds = 0;
};

// Guest RAM is the span of the mappings of `mem_file` (ember's memory file, mapped privately: the
// pages the guest wrote are private copies within it) or, without one, QEMU's anonymous mapping of
// the guest's size.
CloneCost cost_of(pid_t pid, const std::string& mem_file, const std::string& binary) {
    struct Area {
        unsigned long long start, end;
        bool guest;
        Part part;
        long long private_kib;
    };
    std::vector<Area> areas;
    std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
    for (std::string line; std::getline(smaps, line);) {
        unsigned long long s = 0, e = 0;
        if (std::sscanf(line.c_str(), "%llx-%llx ", &s, &e) == 2 &&
            line.find(' ') > line.find('-')) {
            const bool guest = mem_file.empty() ? e - s >= (kGuestMib - 8) * 1048576ULL
                                                : line.size() >= mem_file.size() &&
                                                      line.compare(line.size() - mem_file.size(),
                                                                   mem_file.size(), mem_file) == 0;
            // The name is the sixth field, after the inode: whatever follows it, spaces and all.
            std::string name;
            int field = 0;
            size_t at = 0;
            while (field < 5 && at < line.size()) {
                at = line.find(' ', at);
                if (at == std::string::npos) break;
                while (at < line.size() && line[at] == ' ') ++at;
                ++field;
            }
            if (field == 5 && at < line.size()) name = line.substr(at);
            areas.push_back({s, e, guest, part_of(name, binary), 0});
            continue;
        }
        long long kib = 0;
        if (!areas.empty() && (std::sscanf(line.c_str(), "Private_Clean: %lld kB", &kib) == 1 ||
                               std::sscanf(line.c_str(), "Private_Dirty: %lld kB", &kib) == 1 ||
                               std::sscanf(line.c_str(), "Private_Hugetlb: %lld kB", &kib) == 1))
            areas.back().private_kib += kib;
    }
    unsigned long long lo = ~0ULL, hi = 0;
    for (const auto& a : areas)
        if (a.guest) lo = std::min(lo, a.start), hi = std::max(hi, a.end);
    CloneCost cost;
    for (const auto& a : areas) {
        const bool in_guest = a.start >= lo && a.start < hi;
        (in_guest ? cost.guest_kib : cost.outside_kib) += a.private_kib;
        if (!in_guest) cost.part_kib[a.part] += a.private_kib;
    }
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);) {
        std::sscanf(line.c_str(), "VmPTE: %lld kB", &cost.pte_kib);
        std::sscanf(line.c_str(), "Threads: %lld", &cost.threads);
    }
    if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++cost.fds;
        ::closedir(d);
    }
    return cost;
}

long long mem_available_kib() {
    std::ifstream in("/proc/meminfo");
    for (std::string line; std::getline(in, line);) {
        long long kib = 0;
        if (std::sscanf(line.c_str(), "MemAvailable: %lld kB", &kib) == 1) return kib;
    }
    return 0;
}

std::string first_line_of(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

// A memory cgroup the bench joins before it starts clones, so that everything they and the kernel
// on their behalf allocate (KVM's per-VM memory, page tables, their pipes and sockets) is charged
// to it: cgroup v2, or v1's memory controller. The bench leaves it, and removes it, at the end.
class MemoryCgroup {
  public:
    static std::unique_ptr<MemoryCgroup> join(std::string& why) {
        std::string own, v1;
        std::ifstream in("/proc/self/cgroup");
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("0::", 0) == 0) own = line.substr(3);
            auto at = line.find(":memory:");
            if (at != std::string::npos) v1 = line.substr(at + 8);
        }
        if (own == "/") own.clear();
        const bool is_v2 = ::access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
        const std::string parent = is_v2 ? "/sys/fs/cgroup" + own : "/sys/fs/cgroup/memory" + v1;
        if (!is_v2 && v1.empty()) return why = "no memory cgroup controller", nullptr;
        // v2 gives a child the memory controller only where its parent's cgroup.subtree_control
        // enables it; without it the child has no memory.current and every charge would read 0. A
        // hierarchy freshly mounted, as tests/nested/run's VM mounts it, enables none: it is
        // enabled here as tests/support/pids_cgroup.cc enables pids, and left so (harmless once it
        // is). A parent that does not offer it, or that v2 refuses it to (one holding processes,
        // other than the root), is said instead.
        if (is_v2 && !has_word(first_line_of(parent + "/cgroup.subtree_control"), "memory")) {
            if (!has_word(first_line_of(parent + "/cgroup.controllers"), "memory"))
                return why = "cgroup v2 offers " + parent + " no memory controller", nullptr;
            if (!write_to(parent + "/cgroup.subtree_control", "+memory"))
                return why = "enabling memory in " + parent +
                             "/cgroup.subtree_control: " + std::strerror(errno),
                       nullptr;
        }
        auto cg = std::make_unique<MemoryCgroup>(
            parent, parent + "/ember-density-" + std::to_string(::getpid()), is_v2);
        if (::mkdir(cg->path_.c_str(), 0755) != 0)
            return why = "mkdir " + cg->path_ + ": " + std::strerror(errno), nullptr;
        cg->made_ = true;
        const std::string charge_file =
            cg->path_ + (is_v2 ? "/memory.current" : "/memory.usage_in_bytes");
        if (::access(charge_file.c_str(), R_OK) != 0)
            return why = charge_file + ": " + std::strerror(errno), nullptr;
        if (!write_to(cg->path_ + "/cgroup.procs", std::to_string(::getpid())))
            return why = "joining " + cg->path_ + ": " + std::strerror(errno), nullptr;
        cg->joined_ = true;
        return cg;
    }
    MemoryCgroup(std::string parent, std::string path, bool v2)
        : parent_(std::move(parent)), path_(std::move(path)), v2_(v2) {}
    MemoryCgroup(const MemoryCgroup&) = delete;
    MemoryCgroup& operator=(const MemoryCgroup&) = delete;
    ~MemoryCgroup() {
        if (joined_) write_to(parent_ + "/cgroup.procs", std::to_string(::getpid()));
        if (made_) ::rmdir(path_.c_str());
    }

    long long charged_kib() const {
        return std::atoll(
                   first_line_of(path_ + (v2_ ? "/memory.current" : "/memory.usage_in_bytes"))
                       .c_str()) /
               1024;
    }
    // The kernel's own share: v1 counts it apart; v2's memory.stat names it "kernel".
    long long kernel_kib() const {
        if (!v2_)
            return std::atoll(first_line_of(path_ + "/memory.kmem.usage_in_bytes").c_str()) / 1024;
        std::ifstream in(path_ + "/memory.stat");
        for (std::string line; std::getline(in, line);) {
            long long bytes = 0;
            if (std::sscanf(line.c_str(), "kernel %lld", &bytes) == 1) return bytes / 1024;
        }
        return -1;
    }

  private:
    // Whether the space-separated list `text` (cgroup.controllers, cgroup.subtree_control) holds
    // `word`.
    static bool has_word(const std::string& text, const std::string& word) {
        for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1))
            if ((at == 0 || text[at - 1] == ' ') &&
                (at + word.size() == text.size() || text[at + word.size()] == ' '))
                return true;
        return false;
    }
    static bool write_to(const std::string& file, const std::string& value) {
        ember::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
        return fd.valid() &&
               ::write(fd.get(), value.data(), value.size()) == static_cast<ssize_t>(value.size());
    }
    std::string parent_, path_;
    bool v2_;
    bool made_ = false, joined_ = false;
};

// Boots the idle peer guest under QEMU and migrates it to `migration`: "" or what failed.
std::string migrate_qemu(const std::string& dir, const std::vector<std::string>& qemu_vm,
                         const std::string& migration) {
    Clone source;
    std::string why;
    const std::string sock = dir + "/qsource.sock";
    auto argv = qemu_vm;
    argv.insert(argv.end(), {"-serial", "stdio", "-qmp", "unix:" + sock + ",server=on,wait=off"});
    if (!start_process(source, argv, sock, dir + "/qsource.err", why)) return why;
    if (read_until(source.console.get(), "!", std::chrono::seconds(60)).find('!') ==
        std::string::npos)
        return "the guest never wrote its '!': " + exit_of(source);
    auto qmp = QmpClient::connect(sock, 30000);
    if (!qmp) return qmp.error().message;
    auto r = qmp->call(R"({"execute": "migrate", "arguments": {"uri": "exec:cat > )" + migration +
                       "\"}}");
    if (!r) return r.error().message;
    for (int i = 0; i < 30000; ++i) {
        r = qmp->call(R"({"execute": "query-migrate"})");
        if (!r) return r.error().message;
        if (r->find("\"completed\"") != std::string::npos) return "";
        if (r->find("\"failed\"") != std::string::npos) return "migration failed: " + *r;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return "the migration never completed";
}

// Restores one clone numbered n: the ms to its first answer, or nothing and why.
using RestoreOne = std::function<std::optional<double>(Clone&, int n, std::string& why)>;

// Restores `count` clones `parallel` at a time, appended to `clones` and kept; their load ->
// answer times in `times`. Stops at the first failure, said in `why`; the number restored.
int restore_many(std::vector<std::unique_ptr<Clone>>& clones, int count, int parallel,
                 const RestoreOne& restore_one, std::vector<double>& times, std::string& why) {
    const size_t base = clones.size();
    for (int i = 0; i < count; ++i) clones.push_back(std::make_unique<Clone>());
    std::atomic<int> next{0};
    std::atomic<bool> failed{false};
    std::mutex lock;
    std::vector<char> ok(static_cast<size_t>(count), 0);
    auto worker = [&] {
        while (!failed.load()) {
            const int i = next.fetch_add(1);
            if (i >= count) return;
            std::string reason;
            auto ms = restore_one(*clones[base + static_cast<size_t>(i)],
                                  static_cast<int>(base) + i, reason);
            std::lock_guard hold(lock);
            if (!ms) {
                if (!failed.exchange(true)) why = reason;
                continue;
            }
            times.push_back(*ms);
            ok[static_cast<size_t>(i)] = 1;
        }
    };
    std::vector<std::thread> workers;
    workers.reserve(static_cast<size_t>(parallel));
    for (int w = 0; w < parallel; ++w) workers.emplace_back(worker);
    for (auto& w : workers) w.join();
    // Keep only the clones that answered, in order, so that clones[0..n) are all live.
    std::vector<std::unique_ptr<Clone>> live;
    for (size_t i = 0; i < clones.size(); ++i)
        if (i < base || ok[i - base]) live.push_back(std::move(clones[i]));
    clones = std::move(live);
    return static_cast<int>(clones.size() - base);
}

struct Step {
    int k;
    double p50, p99, per_second;
    CloneCost mean;
    long long host_kib, cgroup_kib, kernel_kib;
};

// Live clones grown step by step, 8 restored at a time, and what each step cost the host.
class Fill {
  public:
    Fill(RestoreOne restore_one, std::string mem_file, std::string binary,
         const MemoryCgroup* cgroup)
        : restore_one_(std::move(restore_one)),
          mem_file_(std::move(mem_file)),
          binary_(std::move(binary)),
          cgroup_(cgroup) {
        available_before_ = mem_available_kib();
        charged_before_ = cgroup_ ? cgroup_->charged_kib() : 0;
        kernel_before_ = cgroup_ ? cgroup_->kernel_kib() : 0;
    }

    // Grows to k live clones: the step's figures, or nothing when no clone lives. A restore that
    // fails ends the fill, said by broke().
    std::optional<Step> grow_to(int k) {
        std::vector<double> times;
        const int want = k - static_cast<int>(clones_.size());
        const auto t = Clock::now();
        const int got = restore_many(clones_, want, 8, restore_one_, times, broke_);
        const double seconds = ms_since(t) / 1000;
        if (got < want && broke_.empty()) broke_ = "a restore failed";
        if (clones_.empty()) return std::nullopt;
        Step s{};
        s.k = static_cast<int>(clones_.size());
        s.p50 = percentile(times, 0.5);
        s.p99 = percentile(times, 0.99);
        s.per_second = seconds > 0 ? got / seconds : 0;
        for (const auto& c : clones_) {
            const CloneCost one = cost_of(c->pid, mem_file_, binary_);
            s.mean.outside_kib += one.outside_kib;
            for (int p = 0; p < kParts; ++p) s.mean.part_kib[p] += one.part_kib[p];
            s.mean.guest_kib += one.guest_kib;
            s.mean.pte_kib += one.pte_kib;
            s.mean.threads += one.threads;
            s.mean.fds += one.fds;
        }
        const long long n = s.k;
        s.mean.outside_kib /= n;
        for (auto& kib : s.mean.part_kib) kib /= n;
        s.mean.guest_kib /= n;
        s.mean.pte_kib /= n;
        s.mean.threads /= n;
        s.mean.fds /= n;
        // The host's and the cgroup's figures are what this step's clones added, per clone: the
        // first clone also brings what the bench's own threads allocate.
        const long long added = std::max(got, 1), available = mem_available_kib();
        s.host_kib = (available_before_ - available) / added;
        available_before_ = available;
        s.cgroup_kib = s.kernel_kib = -1;
        if (cgroup_) {
            const long long charged = cgroup_->charged_kib(), kernel = cgroup_->kernel_kib();
            s.cgroup_kib = (charged - charged_before_) / added;
            // -1 where memory.stat names no kernel share (v2 before Linux 5.18), not a 0.
            s.kernel_kib =
                kernel >= 0 && kernel_before_ >= 0 ? (kernel - kernel_before_) / added : -1;
            charged_before_ = charged, kernel_before_ = kernel;
        }
        return s;
    }
    const std::string& broke() const { return broke_; }
    int live() const { return static_cast<int>(clones_.size()); }

  private:
    RestoreOne restore_one_;
    std::string mem_file_, binary_;
    const MemoryCgroup* cgroup_;
    std::vector<std::unique_ptr<Clone>> clones_;
    std::string broke_;
    long long available_before_, charged_before_, kernel_before_;
};

void print_header(const char* time_column) {
    std::printf(
        "\n| K | %s p50 ms | p99 ms | restores/s | USS outside guest KiB | guest private KiB | "
        "page "
        "tables KiB | threads | fds | host KiB, added | cgroup KiB, added | of which kernel KiB "
        "|\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        time_column);
}

void print_step(const Step& s) {
    std::printf(
        "| %d | %.1f | %.1f | %.1f | %lld | %lld | %lld | %lld | %lld | %lld | %lld | %lld |\n",
        s.k, s.p50, s.p99, s.per_second, s.mean.outside_kib, s.mean.guest_kib, s.mean.pte_kib,
        s.mean.threads, s.mean.fds, s.host_kib, s.cgroup_kib, s.kernel_kib);
    std::fflush(stdout);
}

// Where each K's USS outside guest RAM is, per clone: at K = 1 the clean pages of the program and
// its libraries are this clone's alone; as K grows they are shared, and what stays is each clone's
// own: the relocations written into the libraries' and the program's data, the heap, the stacks.
void print_parts(const std::vector<Step>& steps) {
    std::printf("\nper clone, where the USS outside guest RAM is (KiB):\n\n| K |");
    for (const char* name : kPartNames) std::printf(" %s |", name);
    std::printf("\n|---|");
    for (int p = 0; p < kParts; ++p) std::printf("---|");
    std::printf("\n");
    for (const auto& s : steps) {
        std::printf("| %d |", s.k);
        for (long long kib : s.mean.part_kib) std::printf(" %lld |", kib);
        std::printf("\n");
    }
}

// What a clone added costs the host, for the plot: the cgroup's charge where there is one (the
// host's MemAvailable moves with everything else it runs), never below 0.
double added_kib(const Step& s) {
    return static_cast<double>(std::max(0LL, s.cgroup_kib >= 0 ? s.cgroup_kib : s.host_kib));
}

// An axis's top: the first of 1, 2, 5 (times a power of ten) at or above max, split in 5 ticks.
double axis_top(double max) {
    if (!(max > 0)) return 1;
    const double scale = std::pow(10.0, std::floor(std::log10(max)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * scale >= max) return m * scale;
    return 10 * scale;
}

// A tick's label, with as many decimals as its step needs.
std::string tick_label(double v, double step) {
    const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step)));
    char out[32];
    std::snprintf(out, sizeof out, "%.*f", decimals, v);
    return out;
}

void write_svg(const std::string& path, const std::vector<Step>& steps) {
    if (steps.empty()) return;
    std::ofstream svg(path);
    const double w = 720, h = 340, left = 80, right = 90, top = 50, bottom = 50, ticks = 5;
    double max_k = 1, max_ms = 0, max_kib = 0;
    for (const auto& s : steps) {
        max_k = std::max(max_k, static_cast<double>(s.k));
        max_ms = std::max(max_ms, s.p99);
        max_kib = std::max(max_kib, added_kib(s));
    }
    const double top_ms = axis_top(max_ms), top_kib = axis_top(max_kib);
    auto x = [&](int k) {
        return left + (w - left - right) * std::log10(static_cast<double>(k)) /
                          std::max(1.0, std::log10(max_k));
    };
    auto y = [&](double v, double max) { return top + (h - top - bottom) * (1 - v / max); };
    auto line = [&](auto value, double max, const char* colour, const char* dash) {
        svg << "<polyline fill='none' stroke='" << colour << "' stroke-dasharray='" << dash
            << "' points='";
        for (const auto& s : steps) svg << x(s.k) << ',' << y(value(s), max) << ' ';
        svg << "'/>\n";
    };
    svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h
        << "' font-family='sans-serif' font-size='11'>\n"
        << "<text x='" << w / 2 << "' y='16' text-anchor='middle'>ember clones of one snapshot: "
        << "load to first answer and host memory per clone, against K</text>\n"
        << "<text x='" << w / 2 << "' y='32' text-anchor='middle'><tspan fill='#c03'>red: p50 "
        << "(solid), p99 (dashed), left axis</tspan>; <tspan fill='#06c'>blue: host memory per "
        << "clone, right axis</tspan></text>\n";
    // Both y axes, their ticks and a light grid at the ticks.
    for (int i = 0; i <= ticks; ++i) {
        const double at = y(i / ticks, 1);
        svg << "<line x1='" << left << "' y1='" << at << "' x2='" << w - right << "' y2='" << at
            << "' stroke='#ddd'/>\n"
            << "<text x='" << left - 6 << "' y='" << at + 4 << "' text-anchor='end' fill='#c03'>"
            << tick_label(top_ms * i / ticks, top_ms / ticks) << "</text>\n"
            << "<text x='" << w - right + 6 << "' y='" << at + 4 << "' fill='#06c'>"
            << tick_label(top_kib * i / ticks, top_kib / ticks) << "</text>\n";
    }
    svg << "<line x1='" << left << "' y1='" << top << "' x2='" << left << "' y2='" << h - bottom
        << "' stroke='black'/>\n"
        << "<line x1='" << w - right << "' y1='" << top << "' x2='" << w - right << "' y2='"
        << h - bottom << "' stroke='black'/>\n"
        << "<line x1='" << left << "' y1='" << h - bottom << "' x2='" << w - right << "' y2='"
        << h - bottom << "' stroke='black'/>\n";
    const double middle = (top + h - bottom) / 2;
    svg << "<text transform='translate(18," << middle << ") rotate(-90)' text-anchor='middle' "
        << "fill='#c03'>load to first answer, ms</text>\n"
        << "<text transform='translate(" << w - 14 << ',' << middle << ") rotate(90)' "
        << "text-anchor='middle' fill='#06c'>host memory per clone, KiB</text>\n";
    for (const auto& s : steps)
        svg << "<text x='" << x(s.k) << "' y='" << h - bottom + 16 << "' text-anchor='middle'>"
            << s.k << "</text>\n";
    svg << "<text x='" << (left + w - right) / 2 << "' y='" << h - 12
        << "' text-anchor='middle'>live clones K (log scale)</text>\n";
    line([](const Step& s) { return s.p50; }, top_ms, "#c03", "none");
    line([](const Step& s) { return s.p99; }, top_ms, "#c03", "4 3");
    line(added_kib, top_kib, "#06c", "none");
    svg << "</svg>\n";
}

}  // namespace

// The pool against a raw socket: `runs` restores each way, interleaved, one at a time, none kept.
// Both loads go to an ember of the one pool that has said its VM is ready, so the two differ only
// in the client. (An ember that has waited longer loads slower, by milliseconds on a paravirtual
// KVM: comparing a pool's ember with one started just before its load measures that, not the
// client.)
bool pool_against_raw(const std::string& dir, const std::string& load_body, int runs) {
    auto load = ember::json::parse_body<ember::LoadSnapshot>(load_body);
    if (!load) return std::printf("\npool: %s\n", load.error().message.c_str()), false;
    ember::client::PoolOptions o;
    o.process.ember = ember_binary;
    o.process.args = {"--level", "Info"};
    o.process.log_path = dir + "/pool.log";
    o.process.start_timeout = std::chrono::seconds(30);
    o.process.client.timeout = std::chrono::seconds(60);
    o.socket_dir = dir;
    o.name = "pool";
    o.size = 1;
    auto pool = ember::client::ReadyPool::start(o);
    if (!pool) return std::printf("\npool: %s\n", pool.error().message.c_str()), false;
    std::vector<double> raw, pooled;
    for (int i = 0; i < runs; ++i) {
        // Each way first in turn, and no clone of one way running beside the other's load, nor the
        // pool's replacement starting: the pool is full once its ember has said on its --ready-fd
        // that its VM is made.
        const auto pool_ready = [&] {
            auto full = (*pool)->wait_until_full(std::chrono::seconds(30));
            if (full) return true;
            return std::printf("\npool: run %d: no ember became ready: %s\n", i,
                               full.error().message.c_str()),
                   false;
        };
        // The same load written by hand: into an ember taken from the pool, on a new connection,
        // with the pool's replacement held back until it has answered, as restore() holds it.
        const auto raw_run = [&] {
            if (!pool_ready()) return false;
            const auto start = Clock::now();
            auto ember =
                (*pool)->take_for([&](ember::client::EmberProcess& e) -> ember::Result<void> {
                    auto c = UdsHttpClient::connect(e.socket_path(), 30000);
                    EMBER_TRY(c);
                    auto r = c->request("PUT", "/snapshot/load", load_body);
                    EMBER_TRY(r);
                    if (r->status != 204) return ember::fail(r->body);
                    return {};
                });
            const double ms = ms_since(start);
            if (!ember)
                return std::printf("\nraw socket: run %d failed: %s\n", i,
                                   ember.error().message.c_str()),
                       false;
            raw.push_back(ms);
            return true;
        };
        const auto pool_run = [&] {
            if (!pool_ready()) return false;
            const auto start = Clock::now();
            auto clone = (*pool)->restore(*load);
            const double ms = ms_since(start);
            if (!clone)
                return std::printf("\npool: run %d: %s\n", i, clone.error().message.c_str()), false;
            pooled.push_back(ms);
            return true;
        };
        if (!(i % 2 ? pool_run() && raw_run() : raw_run() && pool_run())) return false;
    }
    std::printf(
        "\nrestore through the client's pool against the same load on a raw socket: %d each, "
        "interleaved, one at a time; take to the guest running (the load's 204, resume_vm), each "
        "into an ember of one pool that said its VM was ready:\n\n| client | p50 ms | p99 ms |\n"
        "|---|---|---|\n| take_for, then a raw socket (tests/support/uds_http) | %.3f | %.3f |\n"
        "| ReadyPool::restore (cpp-httplib) "
        "| %.3f | %.3f |\npool / raw socket: p50 %.3f, p99 %.3f; pool - raw socket: p50 %+.3f ms, "
        "p99 %+.3f ms\n",
        runs, percentile(raw, 0.5), percentile(raw, 0.99), percentile(pooled, 0.5),
        percentile(pooled, 0.99), percentile(pooled, 0.5) / percentile(raw, 0.5),
        percentile(pooled, 0.99) / percentile(raw, 0.99),
        percentile(pooled, 0.5) - percentile(raw, 0.5),
        percentile(pooled, 0.99) - percentile(raw, 0.99));
    return true;
}

// Ready before the load: `runs` clones each way, interleaved, one at a time, none kept.
// Where a load into a ready ember goes, from each one's log: medians of each step's end and of
// its own time, from the request's arrival (which the load call's time includes, with the HTTP).
void print_load_phases(const std::vector<ember::perf::PhaseLine>& phased) {
    std::printf(
        "\nthe load into a ready ember by phase, %zu loads (medians; each step ends when the next "
        "begins):\n\n| step | ends, us from the request | takes, us |\n|---|---|---|\n",
        phased.size());
    ember::perf::print_phase_rows(phased);
}

bool ready_embers(const std::string& dir, const std::string& load, int runs) {
    struct Way {
        Start how;
        const char* name;
        std::vector<double> call, answer;
    };
    std::vector<Way> ways{{Start::Ready, "ready (it said so before the load)", {}, {}},
                          {Start::AtOnce, "load at once (as its API answers)", {}, {}},
                          {Start::NoPrepare, "--no-prepare-vm, load at once", {}, {}}};
    std::vector<ember::perf::PhaseLine> phased;  // the ready embers' loads
    for (int i = 0; i < runs; ++i) {
        for (auto& w : ways) {
            Clone c;
            std::string why;
            auto t = restore_timed(c, dir, 100000 + i, load, w.how, why);
            if (!t) return std::printf("\n%s: run %d failed: %s\n", w.name, i, why.c_str()), false;
            w.call.push_back(t->call_ms);
            w.answer.push_back(t->answer_ms);
            if (t->phases) phased.push_back(std::move(*t->phases));
        }
    }
    std::printf(
        "\nready before the load: %d clones each way, interleaved, one at a time; the load call is "
        "PUT /snapshot/load (resume_vm) sent to its 204, the guest running:\n\n| ember | load call "
        "p50 ms | p99 ms | load -> answer p50 ms | p99 ms |\n|---|---|---|---|---|\n",
        runs);
    for (auto& w : ways)
        std::printf("| %s | %.3f | %.3f | %.3f | %.3f |\n", w.name, percentile(w.call, 0.5),
                    percentile(w.call, 0.99), percentile(w.answer, 0.5),
                    percentile(w.answer, 0.99));
    const Way &ready = ways[0], &at_once = ways[1], &before = ways[2];
    std::printf(
        "ready / --no-prepare-vm: load call %.2f, load -> answer %.2f; at once / "
        "--no-prepare-vm: load call %.2f\n",
        percentile(ready.call, 0.5) / percentile(before.call, 0.5),
        percentile(ready.answer, 0.5) / percentile(before.answer, 0.5),
        percentile(at_once.call, 0.5) / percentile(before.call, 0.5));
    print_load_phases(phased);
    return true;
}

int main(int argc, char** argv) {
    const bool quick = ember::perf::quick_mode();
    int max_k = quick ? 10 : 1000;
    std::string svg, qemu;
    int pool_only = 0;  // --pool RUNS: only the pool against the raw socket
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--pool" && i + 1 < argc) {
            pool_only = std::atoi(argv[++i]);
        } else if (a == "--max" && i + 1 < argc) {
            max_k = std::atoi(argv[++i]);
        } else if (a == "--svg" && i + 1 < argc) {
            svg = argv[++i];
        } else if (a == "--qemu" && i + 1 < argc) {
            qemu = argv[++i];
        } else if (a == "--ember" && i + 1 < argc) {
            ember_binary = argv[++i];
        } else {
            std::fprintf(stderr,
                         "usage: density_bench [--max K] [--svg FILE] [--qemu PATH] [--pool RUNS] "
                         "[--ember PATH]\n");
            return 2;
        }
    }
    // A clone holds a few fds here and in ember: a thousand of them need more than the default.
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
    ::signal(SIGPIPE, SIG_IGN);

    TempDir dir;
    const std::string state = dir.path() + "/g.state", mem = dir.path() + "/g.mem";
    {
        Clone source;
        std::string why;
        if (!start_ember(source, dir.path() + "/source.sock", dir.path() + "/source.err", why))
            return std::fprintf(stderr, "density_bench: %s\n", why.c_str()), 1;
        auto c = UdsHttpClient::connect(source.sock);
        if (!c) return std::fprintf(stderr, "density_bench: no API\n"), 1;
        for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
                 {"/machine-config",
                  R"({"vcpu_count": 1, "mem_size_mib": )" + std::to_string(kGuestMib) + "}"},
                 {"/boot-source", R"({"kernel_image_path": ")" + std::string(EMBER_GUEST_DIR) +
                                      "/generation_id.elf\"}"},
                 {"/actions", R"({"action_type": "InstanceStart"})"}}) {
            auto r = c->request("PUT", path, body);
            if (!r || r->status != 204)
                return std::fprintf(stderr, "density_bench: PUT %s failed\n", path.c_str()), 1;
        }
        if (read_until(source.console.get(), "genid", std::chrono::seconds(60)).find("genid") ==
            std::string::npos)
            return std::fprintf(stderr, "density_bench: the source guest never started\n"), 1;
        auto r = c->request("PATCH", "/vm", R"({"state": "Paused"})");
        if (r && r->status == 204)
            r = c->request(
                "PUT", "/snapshot/create",
                R"({"snapshot_path": ")" + state + R"(", "mem_file_path": ")" + mem + "\"}");
        if (!r || r->status != 204)
            return std::fprintf(stderr, "density_bench: the source snapshot failed\n"), 1;
    }
    const std::string load = R"({"snapshot_path": ")" + state +
                             R"(", "mem_backend": {"backend_type": "File", "backend_path": ")" +
                             mem + R"("}, "resume_vm": true})";
    if (pool_only > 0) return pool_against_raw(dir.path(), load, pool_only) ? 0 : 1;

    utsname host{};
    ::uname(&host);
    std::printf(
        "perf/density: idle clones of one %d MiB snapshot (tests/guest/generation_id), host %s %s; "
        "open files %llu, pid_max %s, threads-max %s\n",
        kGuestMib, host.sysname, host.release, static_cast<unsigned long long>(files.rlim_cur),
        first_line_of("/proc/sys/kernel/pid_max").c_str(),
        first_line_of("/proc/sys/kernel/threads-max").c_str());

    std::string cgroup_why;
    auto cgroup = MemoryCgroup::join(cgroup_why);
    if (!cgroup) std::printf("memory cgroup: none (%s)\n", cgroup_why.c_str());

    // Fill.
    const RestoreOne ember_restore = [&](Clone& c, int n, std::string& why) {
        return restore(c, dir.path(), n, load, why);
    };
    std::vector<Step> steps;
    std::string broke;
    int reached = 0;
    {
        Fill fill(ember_restore, mem, ember_binary, cgroup.get());
        print_header("load -> answer");
        std::vector<int> ks;
        for (int k : {1, 10, 100, 250, 500})
            if (k < max_k) ks.push_back(k);
        for (int k = 1000; k < max_k; k += 1000) ks.push_back(k);
        ks.push_back(max_k);
        for (int k : ks) {
            auto s = fill.grow_to(k);
            if (s) print_step(steps.emplace_back(*s));
            if (!s || !fill.broke().empty()) break;
        }
        reached = fill.live();
        broke = fill.broke();
    }
    print_parts(steps);
    if (broke.empty())
        std::printf("\nall %d clones answered and were alive together (--max %d)\n", reached,
                    max_k);
    else
        std::printf("\nstopped at %d live clones: %s\n", reached, broke.c_str());

    // The peer, to a K of its own.
    const int peer_k = 10;
    if (!qemu.empty()) {
        const std::string bios = dir.write(
            "idle.bios", ember::perf::bios_image(read_file(PEER_BLOB_DIR "/peer_first_out.bin")));
        const auto qemu_vm = ember::perf::qemu_microvm(qemu, bios, kGuestMib);
        const std::string migration = dir.path() + "/idle.mig";
        if (auto why = migrate_qemu(dir.path(), qemu_vm, migration); !why.empty())
            return std::fprintf(stderr, "density_bench: the QEMU source: %s\n", why.c_str()), 1;
        Fill fill(
            [&](Clone& c, int n, std::string& why) {
                return restore_qemu(c, dir.path(), n, qemu_vm, migration, why);
            },
            "", "", cgroup.get());
        std::printf(
            "\nthe peer: QEMU %s, clones restored with -incoming from a migration file of "
            "an idle guest (perf/startup's first_out), time from process start:\n",
            qemu.c_str());
        print_header("start -> running");
        auto peer = fill.grow_to(peer_k);
        if (!peer || !fill.broke().empty())
            return std::fprintf(stderr, "density_bench: QEMU clones: %s\n", fill.broke().c_str()),
                   1;
        print_step(*peer);
        const Step* ours = nullptr;
        for (const auto& s : steps)
            if (s.k == peer_k) ours = &s;
        // A ratio of two figures above 0, or "n/a (why)": a figure this host could not give (no
        // memory cgroup), or one of 0 or below (MemAvailable moves with all else the host does),
        // would make it a NaN, an infinity or a sign that means nothing. perf/run-quick accepts
        // the n/a only with its reason.
        const auto ratio = [](double ember, double peer, const char* unit) {
            char text[160];
            if (ember > 0 && peer > 0)
                std::snprintf(text, sizeof text, "%.3f", ember / peer);
            else
                std::snprintf(text, sizeof text, "n/a (not both above 0: ember %.1f, QEMU %.1f %s)",
                              ember, peer, unit);
            return std::string(text);
        };
        if (ours) {
            const auto kib = [](long long v) { return static_cast<double>(v); };
            const std::string uss = ratio(kib(ours->mean.outside_kib), kib(peer->mean.outside_kib),
                                          "KiB"),
                              host = ratio(kib(ours->host_kib), kib(peer->host_kib), "KiB"),
                              charged = cgroup ? ratio(kib(ours->cgroup_kib), kib(peer->cgroup_kib),
                                                       "KiB")
                                               : "n/a (no memory cgroup: " + cgroup_why + ")",
                              rate = ratio(ours->per_second, peer->per_second, "restores/s");
            std::printf(
                "ember/QEMU at K=%d: USS outside guest %s, host per clone %s, cgroup per clone %s, "
                "restores/s %s\n",
                peer_k, uss.c_str(), host.c_str(), charged.c_str(), rate.c_str());
        }
    }

    // Rate.
    const int per_run = quick ? 4 : 96;
    std::printf(
        "\nrestores per second, %d clones kept alive per run:\n\n| at a time | seconds | "
        "restores/s | load -> answer p50 ms | p99 ms |\n|---|---|---|---|---|\n",
        per_run);
    for (int parallel : {1, 2, 8}) {
        std::vector<double> times;
        std::string why;
        std::vector<std::unique_ptr<Clone>> clones;
        const auto t = Clock::now();
        const int got = restore_many(clones, per_run, parallel, ember_restore, times, why);
        const double seconds = ms_since(t) / 1000;
        clones.clear();
        if (got < per_run) {
            std::printf("| %d | failed after %d: %s |\n", parallel, got, why.c_str());
            return 1;
        }
        std::printf("| %d | %.2f | %.1f | %.1f | %.1f |\n", parallel, seconds, got / seconds,
                    percentile(times, 0.5), percentile(times, 0.99));
    }
    if (!ready_embers(dir.path(), load, quick ? 4 : 40)) return 1;
    if (!pool_against_raw(dir.path(), load, quick ? 4 : 40)) return 1;
    if (!svg.empty()) write_svg(svg, steps);
    return steps.empty() ? 1 : 0;
}
