// perf/api: ember's API beside QEMU's QMP, both on Unix sockets, in the same run:
//   fork/exec to the socket accepting (median, p90 over --runs starts, interleaved);
//   p50/p99 latency of GET / and PUT /machine-config (ember) and query-status (QMP) over
//   --requests requests each on one connection;
//   with --baseline PATH (another ember, say a build of an earlier commit, with whatever it loads
//   beside it), the same latencies for both embers, interleaved in rounds, and their ratio.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "api/client/client.h"
#include "api/json/writer.h"
#include "core/base/unique_fd.h"
#include "perf/percentile.h"
#include "perf/qemu_peer.h"
#include "perf/quick.h"
#include "tests/support/ember_process.h"
#include "tests/support/uds_http.h"

namespace {

using namespace ember::testing;
using Clock = std::chrono::steady_clock;
using ember::perf::percentile;

double us_since(Clock::time_point t) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

int connect_unix(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    ::close(fd);
    return -1;
}

// fork/exec to the first successful connect().
double time_to_socket(const std::vector<std::string>& argv, const std::string& sock) {
    ::unlink(sock.c_str());
    int devnull = ::open("/dev/null", O_RDWR);
    auto t0 = Clock::now();
    pid_t pid = spawn(argv, devnull, devnull, devnull);
    double us = -1;
    while (us_since(t0) < 5e6) {
        int fd = connect_unix(sock);
        if (fd >= 0) {
            us = us_since(t0);
            ::close(fd);
            break;
        }
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(devnull);
    return us;
}

// fork/exec to the first GET / answered.
double time_to_first_answer(const std::vector<std::string>& argv, const std::string& sock) {
    ::unlink(sock.c_str());
    int devnull = ::open("/dev/null", O_RDWR);
    auto t0 = Clock::now();
    pid_t pid = spawn(argv, devnull, devnull, devnull);
    double us = -1;
    if (auto c = UdsHttpClient::connect(sock)) {
        if (auto r = c->request("GET", "/"); r && r->status == 200) us = us_since(t0);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(devnull);
    return us;
}

// fork/exec of ember-jailer to the jailed ember accepting on its socket inside a fresh jail, which
// is removed afterwards.
double time_to_jailed_socket(const std::string& base, int run) {
    const std::string id = "bench-" + std::to_string(run);
    std::vector<std::string> argv = {
        EMBER_JAILER, "--id",  id,           "--exec-file",   EMBER_BINARY,
        "--uid",      "54321", "--gid",      "54321",         "--chroot-base-dir",
        base,         "--",    "--api-sock", "/run/api.sock", "--level",
        "Error"};
    double us = time_to_socket(argv, base + "/ember/" + id + "/root/run/api.sock");
    std::filesystem::remove_all(base + "/ember/" + id);
    return us;
}

// Reads QMP lines until one contains `needle`.
bool qmp_read_until(int fd, std::string& buf, const char* needle) {
    while (buf.find(needle) == std::string::npos) {
        char tmp[4096];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf.append(tmp, static_cast<size_t>(n));
    }
    buf.clear();
    return true;
}

struct Latencies {
    std::vector<double> get_us, put_us;
};

// An ember (`binary`) serving on `sock` with `more` arguments, its output dropped; its pid.
pid_t start_ember(const std::string& binary, const std::string& sock,
                  const std::vector<std::string>& more = {}) {
    std::vector<std::string> argv = {binary, "--api-sock", sock, "--level", "Error"};
    argv.insert(argv.end(), more.begin(), more.end());
    const ember::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    ::unlink(sock.c_str());
    return spawn(argv, devnull.get(), devnull.get(), devnull.get());
}

// `requests` GET / and as many PUT /machine-config on one connection to a fresh ember, added to
// `into`; false if ember did not answer as it should.
bool measure_latencies(const std::string& binary, const std::string& sock, int requests,
                       Latencies& into) {
    const pid_t ember = start_ember(binary, sock);
    auto client = UdsHttpClient::connect(sock);
    bool ok = static_cast<bool>(client);
    for (int i = 0; ok && i < requests; ++i) {
        auto t = Clock::now();
        auto r = client->request("GET", "/");
        into.get_us.push_back(us_since(t));
        ok = r && r->status == 200;
    }
    for (int i = 0; ok && i < requests; ++i) {
        auto t = Clock::now();
        auto r =
            client->request("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 128})");
        into.put_us.push_back(us_since(t));
        ok = r && r->status == 204;
    }
    ::kill(ember, SIGTERM);
    ::waitpid(ember, nullptr, 0);
    return ok;
}

// The client library (api/client, on cpp-httplib) against the same request written by hand, each
// on a new connection per call as the client makes it, interleaved, `requests` each: what a host
// agent pays per call for the library. The load goes to an ember of its own, never configured,
// which refuses it at once because its snapshot file is missing (--serve-after-failed-load keeps
// it serving; --no-prepare-vm keeps it from making a VM again after each refusal): what is timed
// is the call and not a restore, and the same cost, added to a restore's, is what the pool's
// restore pays over a raw socket (perf/density).
struct ClientCost {
    std::vector<double> raw_put_us, client_put_us, raw_get_us, client_get_us, raw_load_us,
        client_load_us;
};

bool measure_client_cost(const std::string& sock, int requests, ClientCost& into) {
    const std::string load_sock = sock + ".load";
    const pid_t ember = start_ember(EMBER_BINARY, sock);
    const pid_t loader =
        start_ember(EMBER_BINARY, load_sock, {"--serve-after-failed-load", "--no-prepare-vm"});
    bool ok = UdsHttpClient::connect(sock) && UdsHttpClient::connect(load_sock);
    ember::client::ClientOptions options;
    options.socket_path = sock;
    ember::client::Client client(options);
    options.socket_path = load_sock;
    ember::client::Client load_client(options);
    ember::MachineConfig machine;
    machine.vcpu_count = 1;
    machine.mem_size_mib = 128;
    const std::string body = R"({"vcpu_count": 1, "mem_size_mib": 128})";
    ember::LoadSnapshot load;
    load.snapshot_path = "/nonexistent/ember-api-bench/vm.snap";
    load.mem_backend = ember::MemBackend{.backend_type = ember::MemBackendType::File,
                                         .backend_path = "/nonexistent/ember-api-bench/mem"};
    load.resume_vm = true;
    const std::string load_body = ember::json::to_json(load, ember::json::Absent::Omitted);
    // Refused for the missing file, not for anything else (a configured ember refuses any load).
    const std::string refusal = "snapshot_path " + load.snapshot_path + ": No such file";
    // The answer must have `status`, and a body that holds `needle`.
    const auto raw = [&](const std::string& at, const char* method, const char* path,
                         const std::string& b, int status, std::vector<double>& out,
                         const std::string& needle = "") {
        auto t = Clock::now();
        auto c = UdsHttpClient::connect(at);
        if (!c) return false;
        auto r = c->request(method, path, b);
        out.push_back(us_since(t));
        return r && r->status == status && r->body.find(needle) != std::string::npos;
    };
    for (int i = 0; ok && i < requests; ++i) {
        ok = raw(sock, "PUT", "/machine-config", body, 204, into.raw_put_us);
        auto t = Clock::now();
        ok = ok && client.put_machine_config(machine).has_value();
        into.client_put_us.push_back(us_since(t));
        ok = ok && raw(sock, "GET", "/", "", 200, into.raw_get_us);
        t = Clock::now();
        ok = ok && client.describe_instance().has_value();
        into.client_get_us.push_back(us_since(t));
        ok = ok &&
             raw(load_sock, "PUT", "/snapshot/load", load_body, 400, into.raw_load_us, refusal);
        t = Clock::now();
        auto refused = load_client.load_snapshot(load);
        into.client_load_us.push_back(us_since(t));
        ok = ok && !refused && refused.error().message.find(refusal) != std::string::npos;
    }
    for (const pid_t p : {ember, loader}) {
        ::kill(p, SIGTERM);
        ::waitpid(p, nullptr, 0);
    }
    if (!ok) std::printf("\nperf/api: a request through the client or a raw socket failed\n");
    return ok;
}

bool report_client_cost(const std::string& sock, int requests) {
    ClientCost cost;
    if (!measure_client_cost(sock, requests, cost)) return false;
    std::printf(
        "\n| request, a new connection each, interleaved | api/client (cpp-httplib) | raw socket "
        "(tests/support/uds_http) | client - raw | client/raw |\n|---|---|---|---|---|\n");
    auto against = [](const char* name, const std::vector<double>& c, const std::vector<double>& r,
                      double p) {
        const double ours = percentile(c, p), raw = percentile(r, p);
        std::printf("| %s | %.0f us | %.0f us | %+.0f us | %.3f |\n", name, ours, raw, ours - raw,
                    ours / raw);
    };
    against("PUT /machine-config p50", cost.client_put_us, cost.raw_put_us, 0.5);
    against("PUT /machine-config p99", cost.client_put_us, cost.raw_put_us, 0.99);
    against("GET / p50", cost.client_get_us, cost.raw_get_us, 0.5);
    against("GET / p99", cost.client_get_us, cost.raw_get_us, 0.99);
    against("PUT /snapshot/load, refused, p50", cost.client_load_us, cost.raw_load_us, 0.5);
    against("PUT /snapshot/load, refused, p99", cost.client_load_us, cost.raw_load_us, 0.99);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::string qemu, baseline;
    bool client_only = false;
    const bool quick = ember::perf::quick_mode();
    int runs = quick ? 2 : 20, requests = quick ? 100 : 10000;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--qemu" && i + 1 < argc)
            qemu = argv[++i];
        else if (a == "--runs" && i + 1 < argc)
            runs = std::stoi(argv[++i]);
        else if (a == "--requests" && i + 1 < argc)
            requests = std::stoi(argv[++i]);
        else if (a == "--baseline" && i + 1 < argc)
            baseline = argv[++i];
        else if (a == "--client-only")
            client_only = true;
        else {
            std::fprintf(stderr,
                         "usage: api_bench [--qemu PATH] [--runs N] [--requests N] "
                         "[--baseline EMBER] [--client-only]\n");
            return 2;
        }
    }
    TempDir dir;
    if (client_only) return report_client_cost(dir.path() + "/client.sock", requests) ? 0 : 1;
    const std::string ember_sock = dir.path() + "/ember.sock", qmp_sock = dir.path() + "/qmp.sock";
    // QEMU needs firmware to start; 64 KiB of HLT is enough, it never runs (-S).
    auto bios_path = dir.write("bios.bin", std::string(65536, '\xf4'));
    std::vector<std::string> ember_argv = {EMBER_BINARY, "--api-sock", ember_sock, "--level",
                                           "Error"};
    auto qemu_argv = ember::perf::qemu_microvm(qemu, bios_path, 128);
    qemu_argv.insert(qemu_argv.end(), {"-S", "-qmp", "unix:" + qmp_sock + ",server=on,wait=off"});

    // The jailer needs root for its namespaces, cgroups and mknod.
    const bool jailed = ::geteuid() == 0;
    const std::string jail_base = dir.path() + "/jails";
    std::filesystem::create_directories(jail_base);
    std::vector<double> ember_ready, ember_answer, qemu_ready, jailed_ready;
    for (int i = 0; i < runs; ++i) {
        ember_ready.push_back(time_to_socket(ember_argv, ember_sock));
        if (jailed) jailed_ready.push_back(time_to_jailed_socket(jail_base, i));
        ember_answer.push_back(time_to_first_answer(ember_argv, ember_sock));
        if (!qemu.empty()) qemu_ready.push_back(time_to_socket(qemu_argv, qmp_sock));
    }
    std::printf(
        "perf/api: %d interleaved starts; %d requests per latency row, one connection each\n\n",
        runs, requests);
    std::printf("| measure | ember | QEMU QMP | ember/QEMU |\n|---|---|---|---|\n");
    auto row = [&](const char* name, double e, double q) {
        if (q > 0)
            std::printf("| %s | %.0f us | %.0f us | %.3f |\n", name, e, q, e / q);
        else
            std::printf("| %s | %.0f us | - | - |\n", name, e);
    };
    row("start to socket accepting, median", percentile(ember_ready, 0.5),
        qemu.empty() ? 0 : percentile(qemu_ready, 0.5));
    row("start to socket accepting, p90", percentile(ember_ready, 0.9),
        qemu.empty() ? 0 : percentile(qemu_ready, 0.9));
    // ember listens before its API thread serves: the first answer comes a little later.
    row("start to first GET / answered, median", percentile(ember_answer, 0.5), 0);
    if (jailed) {
        std::printf(
            "\n| measure | jailed ember | ember | jailed - ember | jailed/ember |\n"
            "|---|---|---|---|---|\n");
        for (double p : {0.5, 0.9}) {
            const double j = percentile(jailed_ready, p), e = percentile(ember_ready, p);
            std::printf("| start to socket accepting, %s | %.0f us | %.0f us | %+.0f us | %.3f |\n",
                        p == 0.5 ? "median" : "p90", j, e, j - e, j / e);
        }
    } else {
        std::printf("\n(jailed start not measured: ember-jailer needs root)\n");
    }

    // Latency: one long-lived process each; with a baseline, the two embers take turns.
    Latencies ours, theirs;
    const int rounds = baseline.empty() ? 1 : 4;
    for (int round = 0; round < rounds; ++round) {
        if (!measure_latencies(EMBER_BINARY, ember_sock, requests / rounds, ours)) return 1;
        if (!baseline.empty() &&
            !measure_latencies(baseline, dir.path() + "/baseline.sock", requests / rounds, theirs))
            return 1;
    }
    const std::vector<double>&get_us = ours.get_us, &put_us = ours.put_us;
    int devnull = ::open("/dev/null", O_RDWR);

    std::vector<double> qmp_us;
    if (!qemu.empty()) {
        ::unlink(qmp_sock.c_str());
        pid_t q = spawn(qemu_argv, devnull, devnull, devnull);
        int fd = -1;
        for (int i = 0; i < 5000 && fd < 0; ++i) {
            fd = connect_unix(qmp_sock);
            if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        std::string buf;
        const std::string caps = "{\"execute\":\"qmp_capabilities\"}\n",
                          status = "{\"execute\":\"query-status\"}\n";
        if (fd < 0 || !qmp_read_until(fd, buf, "QMP") ||
            ::send(fd, caps.data(), caps.size(), 0) < 0 || !qmp_read_until(fd, buf, "return"))
            return 1;
        for (int i = 0; i < requests; ++i) {
            auto t = Clock::now();
            if (::send(fd, status.data(), status.size(), 0) < 0 ||
                !qmp_read_until(fd, buf, "return"))
                return 1;
            qmp_us.push_back(us_since(t));
        }
        ::close(fd);
        ::kill(q, SIGKILL);
        ::waitpid(q, nullptr, 0);
    }
    ::close(devnull);
    bool peer = !qmp_us.empty();
    std::printf(
        "\n| request, one connection | ember | QEMU QMP query-status | ember/QEMU |\n"
        "|---|---|---|---|\n");
    row("GET / p50", percentile(get_us, 0.5), peer ? percentile(qmp_us, 0.5) : 0);
    row("GET / p99", percentile(get_us, 0.99), peer ? percentile(qmp_us, 0.99) : 0);
    row("PUT /machine-config p50", percentile(put_us, 0.5), peer ? percentile(qmp_us, 0.5) : 0);
    row("PUT /machine-config p99", percentile(put_us, 0.99), peer ? percentile(qmp_us, 0.99) : 0);
    if (!baseline.empty()) {
        std::printf(
            "\n| request, one connection | ember | baseline (%s) | ember/baseline |\n"
            "|---|---|---|---|\n",
            baseline.c_str());
        auto versus = [](const char* name, double e, double b) {
            std::printf("| %s | %.0f us | %.0f us | %.3f |\n", name, e, b, e / b);
        };
        versus("GET / p50", percentile(get_us, 0.5), percentile(theirs.get_us, 0.5));
        versus("GET / p99", percentile(get_us, 0.99), percentile(theirs.get_us, 0.99));
        versus("PUT /machine-config p50", percentile(put_us, 0.5), percentile(theirs.put_us, 0.5));
        versus("PUT /machine-config p99", percentile(put_us, 0.99),
               percentile(theirs.put_us, 0.99));
    }

    return report_client_cost(dir.path() + "/client.sock", requests) ? 0 : 1;
}
