// http_probe HOST PORT TIMEOUT_S: asks http://HOST:PORT/ until an HTTP answer arrives, then prints
// the CLOCK_REALTIME time of that answer in microseconds (what `date +%s%N` / 1000 gives) and exits
// 0; exits 1 after TIMEOUT_S. One process polling every 5 ms: perf/faas starts it before the VM
// it waits for, so neither a process start per attempt nor TCP's one-second SYN retry (each attempt
// is a new connection, abandoned after 100 ms) blurs the time of the first answer.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

// One attempt: connect within 100 ms, send a GET, wait for a status line; true on an answer.
bool ask(const sockaddr_in& addr, Clock::time_point give_up) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    bool answered = false;
    int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if ((r == 0 || (errno == EINPROGRESS && ::poll(&p, 1, 100) == 1)) &&
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        const std::string get = "GET / HTTP/1.1\r\nHost: fn\r\nConnection: close\r\n\r\n";
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
            answered = in.rfind("HTTP/1.", 0) == 0;
        }
    }
    ::close(fd);
    return answered;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: http_probe HOST PORT TIMEOUT_S\n");
        return 2;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
    if (::inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        std::fprintf(stderr, "http_probe: bad address %s\n", argv[1]);
        return 2;
    }
    const auto give_up = Clock::now() + std::chrono::seconds(std::atoi(argv[3]));
    while (Clock::now() < give_up) {
        if (ask(addr, give_up)) {
            auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch());
            std::printf("%lld\n", static_cast<long long>(us.count()));
            return 0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::fprintf(stderr, "http_probe: no answer from %s:%s\n", argv[1], argv[2]);
    return 1;
}
