// http_probe HOST PORT TIMEOUT_S [PATH] [--trigger UNIX_SOCKET REQUEST_FILE]: asks
// http://HOST:PORT/PATH (default /) until an HTTP answer arrives, then prints the CLOCK_REALTIME
// time of that answer in microseconds (what `date +%s%N` / 1000 gives) and exits 0; exits 1 after
// TIMEOUT_S. One process polling every 5 ms: perf/faas starts it before the VM it waits for, so
// neither a process start per attempt nor TCP's one-second SYN retry (each attempt is a new
// connection, abandoned after 100 ms) blurs the time of the first answer. On stderr, one line says
// how the attempts went: how many, how each failed, and when (ms after the probe started) the
// first connection was accepted and the answer came, so a slow answer shows whether the time went
// before the connection (the network) or after it (the function).
//
// With --trigger, the probe itself sends REQUEST_FILE's bytes to UNIX_SOCKET (the snapshot load:
// HTTP to ember, QMP to QEMU) just before its first attempt, so that no process start lies inside
// "load -> first answer" (under emulation one costs hundreds of ms). It then prints "REALTIME_US
// ANSWER_US REPLY_US": the answer's and the trigger reply's first line's times in microseconds
// after the send (REPLY_US -1 if no line came within 10 s), and the reply, its lines joined by " |
// ", on stderr as "http_probe: trigger reply: ...".
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>

#include "core/base/unique_fd.h"

namespace {

using Clock = std::chrono::steady_clock;

enum class Outcome { kAnswered, kConnectTimedOut, kRefused, kOtherConnectError, kNoAnswer, kCount };

struct Tally {
    int attempts[static_cast<int>(Outcome::kCount)] = {};
    Clock::time_point first_connected{};
};

// One attempt: connect within 100 ms, send a GET, wait for a status line.
Outcome ask(const sockaddr_in& addr, const std::string& get, Clock::time_point give_up,
            Tally& tally) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Outcome::kOtherConnectError;
    Outcome outcome = Outcome::kConnectTimedOut;
    int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    const bool ready = r == 0 || (errno == EINPROGRESS && ::poll(&p, 1, 100) == 1);
    if (ready && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0)
        outcome = err == ECONNREFUSED ? Outcome::kRefused : Outcome::kOtherConnectError;
    if (ready && err == 0) {
        if (tally.first_connected == Clock::time_point{}) tally.first_connected = Clock::now();
        outcome = Outcome::kNoAnswer;
        if (::send(fd, get.data(), get.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(get.size())) {
            std::string in;
            while (Clock::now() < give_up && in.find("\r\n") == std::string::npos) {
                pollfd q{fd, POLLIN, 0};
                if (::poll(&q, 1, 1000) != 1) continue;
                char buf[512];
                ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                in.append(buf, static_cast<size_t>(n));
            }
            if (in.rfind("HTTP/1.", 0) == 0) outcome = Outcome::kAnswered;
        }
    }
    ::close(fd);
    return outcome;
}

long long ms_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

void report(const Tally& t, Clock::time_point start, Clock::time_point end) {
    auto n = [&](Outcome o) { return t.attempts[static_cast<int>(o)]; };
    int total = 0;
    for (int c : t.attempts) total += c;
    std::fprintf(
        stderr,
        "http_probe: %d attempts (connect timed out %d, refused %d, other error %d, "
        "connected but no answer %d); first connection at %lld ms, %s at %lld ms\n",
        total, n(Outcome::kConnectTimedOut), n(Outcome::kRefused), n(Outcome::kOtherConnectError),
        n(Outcome::kNoAnswer),
        t.first_connected == Clock::time_point{} ? -1LL : ms_between(start, t.first_connected),
        n(Outcome::kAnswered) ? "answer" : "gave up", ms_between(start, end));
}

// Connects to `socket_path` and sends `request` whole: the connection, or an invalid fd.
ember::UniqueFd send_trigger(const std::string& socket_path, const std::string& request) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path) return {};
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
    ember::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid() ||
        ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return {};
    for (size_t sent = 0; sent < request.size();) {
        ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return {};
        sent += static_cast<size_t>(n);
    }
    return fd;
}

// Reads the trigger's reply on a thread of its own, so that its time is exact while the main
// thread probes: the time its first line was whole, and its first 4 KiB.
class ReplyReader {
  public:
    ReplyReader(int fd, Clock::time_point sent) : thread_([this, fd, sent] { run(fd, sent); }) {}
    ReplyReader(const ReplyReader&) = delete;
    ReplyReader& operator=(const ReplyReader&) = delete;
    ~ReplyReader() { finish(Clock::now()); }

    // Waits until `deadline` for the first line, then stops reading. -1 when none came.
    long long first_line_us(Clock::time_point deadline) {
        finish(deadline);
        return first_line_us_.load();
    }
    const std::string& reply() const { return reply_; }

  private:
    void run(int fd, Clock::time_point sent) {
        run_reads(fd, sent);
        done_.store(true);
    }
    void run_reads(int fd, Clock::time_point sent) {
        while (!stop_.load()) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 20) != 1) continue;
            char buf[512];
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) return;
            if (reply_.size() < 4096) reply_.append(buf, static_cast<size_t>(n));
            if (first_line_us_.load() < 0 && reply_.find('\n') != std::string::npos)
                first_line_us_.store(
                    std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent)
                        .count());
        }
    }
    void finish(Clock::time_point deadline) {
        if (!thread_.joinable()) return;
        while (first_line_us_.load() < 0 && !done_.load() && Clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        stop_.store(true);
        thread_.join();
    }

    std::atomic<bool> stop_{false}, done_{false};
    std::atomic<long long> first_line_us_{-1};
    std::string reply_;
    std::thread thread_;
};

std::string one_line(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    std::string out;
    for (char c : s) {
        if (c == '\r') continue;
        out += c == '\n' ? std::string(" | ") : std::string(1, c);
    }
    return out;
}

long long us_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

}  // namespace

int main(int argc, char** argv) {
    std::string trigger_socket, trigger_file;
    if (argc >= 7 && std::strcmp(argv[argc - 3], "--trigger") == 0) {
        trigger_socket = argv[argc - 2];
        trigger_file = argv[argc - 1];
        argc -= 3;
    }
    if (argc != 4 && argc != 5) {
        std::fprintf(stderr,
                     "usage: http_probe HOST PORT TIMEOUT_S [PATH] [--trigger UNIX_SOCKET "
                     "REQUEST_FILE]\n");
        return 2;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
    if (::inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        std::fprintf(stderr, "http_probe: bad address %s\n", argv[1]);
        return 2;
    }
    const std::string path = argc == 5 ? argv[4] : "/";
    if (path.empty() || path[0] != '/' || path.find_first_of(" \r\n") != std::string::npos) {
        std::fprintf(stderr,
                     "http_probe: PATH must start with / and hold no space or line break\n");
        return 2;
    }
    const std::string get = "GET " + path + " HTTP/1.1\r\nHost: fn\r\nConnection: close\r\n\r\n";
    std::string request;
    if (!trigger_file.empty()) {
        std::ifstream in(trigger_file, std::ios::binary);
        if (in) request.assign(std::istreambuf_iterator<char>(in), {});
        if (request.empty()) {
            std::fprintf(stderr, "http_probe: cannot read %s\n", trigger_file.c_str());
            return 2;
        }
    }
    const auto start = Clock::now();
    const auto give_up = start + std::chrono::seconds(std::atoi(argv[3]));
    ember::UniqueFd trigger;
    std::optional<ReplyReader> reader;
    if (!trigger_socket.empty()) {
        trigger = send_trigger(trigger_socket, request);
        if (!trigger.valid()) {
            std::fprintf(stderr, "http_probe: cannot send the trigger to %s: %s\n",
                         trigger_socket.c_str(), std::strerror(errno));
            return 2;
        }
        reader.emplace(trigger.get(), start);
    }
    auto say_reply = [&] {
        if (!reader) return -1LL;
        const long long at = reader->first_line_us(Clock::now() + std::chrono::seconds(10));
        std::fprintf(stderr, "http_probe: trigger reply: %s\n", one_line(reader->reply()).c_str());
        return at;
    };
    Tally tally;
    while (Clock::now() < give_up) {
        const Outcome o = ask(addr, get, give_up, tally);
        ++tally.attempts[static_cast<int>(o)];
        if (o == Outcome::kAnswered) {
            const auto answered = Clock::now();
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch());
            report(tally, start, answered);
            if (reader) {
                const long long reply_us = say_reply();
                std::printf("%lld %lld %lld\n", static_cast<long long>(us.count()),
                            us_between(start, answered), reply_us);
            } else {
                std::printf("%lld\n", static_cast<long long>(us.count()));
            }
            return 0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    say_reply();
    report(tally, start, Clock::now());
    std::fprintf(stderr, "http_probe: no answer from %s:%s\n", argv[1], argv[2]);
    return 1;
}
