// http_probe HOST PORT TIMEOUT_S [PATH]: asks http://HOST:PORT/PATH (default /) until an HTTP
// answer arrives, then prints the CLOCK_REALTIME time of that answer in microseconds (what `date
// +%s%N` / 1000 gives) and exits 0; exits 1 after TIMEOUT_S. One process polling every 5 ms:
// perf/faas starts it before the VM it waits for, so neither a process start per attempt nor TCP's
// one-second SYN retry (each attempt is a new connection, abandoned after 100 ms) blurs the time of
// the first answer. On stderr, one line says how the attempts went: how many, how each failed, and
// when (ms after the probe started) the first connection was accepted and the answer came, so a
// slow answer shows whether the time went before the connection (the network) or after it (the
// function).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

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

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4 && argc != 5) {
        std::fprintf(stderr, "usage: http_probe HOST PORT TIMEOUT_S [PATH]\n");
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
    const auto start = Clock::now();
    const auto give_up = start + std::chrono::seconds(std::atoi(argv[3]));
    Tally tally;
    while (Clock::now() < give_up) {
        const Outcome o = ask(addr, get, give_up, tally);
        ++tally.attempts[static_cast<int>(o)];
        if (o == Outcome::kAnswered) {
            report(tally, start, Clock::now());
            auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch());
            std::printf("%lld\n", static_cast<long long>(us.count()));
            return 0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    report(tally, start, Clock::now());
    std::fprintf(stderr, "http_probe: no answer from %s:%s\n", argv[1], argv[2]);
    return 1;
}
