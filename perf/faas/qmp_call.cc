// qmp_call SOCKET COMMAND_JSON...: connects to QEMU's QMP socket (retrying while QEMU starts),
// negotiates capabilities, sends each command and prints each reply line. perf/faas uses it to
// drive QEMU's migration; no dependency beyond libc.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

namespace {

// The next line QEMU sends, or "" after 60 s or at EOF.
std::string read_line(int fd, std::string& buffer) {
    for (;;) {
        if (auto nl = buffer.find('\n'); nl != std::string::npos) {
            std::string line = buffer.substr(0, nl);
            buffer.erase(0, nl + 1);
            return line;
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 60000) <= 0) return {};
        char chunk[4096];
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n <= 0) return {};
        buffer.append(chunk, static_cast<size_t>(n));
    }
}

// Sends `command` and returns its reply, skipping asynchronous events.
std::string call(int fd, std::string& buffer, const std::string& command) {
    std::string line = command + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return {};
    for (;;) {
        std::string reply = read_line(fd, buffer);
        if (reply.empty() || reply.find("\"event\"") == std::string::npos) return reply;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: qmp_call SOCKET [COMMAND_JSON...]\n");
        return 2;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    int fd = -1;
    for (int i = 0; i < 6000; ++i) {
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
        if (fd >= 0) ::close(fd);
        fd = -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (fd < 0) {
        std::fprintf(stderr, "qmp_call: cannot connect to %s\n", argv[1]);
        return 1;
    }
    std::string buffer;
    read_line(fd, buffer);  // the greeting
    if (call(fd, buffer, R"({"execute": "qmp_capabilities"})").find("return") ==
        std::string::npos) {
        std::fprintf(stderr, "qmp_call: capabilities negotiation failed\n");
        return 1;
    }
    for (int i = 2; i < argc; ++i) std::printf("%s\n", call(fd, buffer, argv[i]).c_str());
    ::close(fd);
    return 0;
}
