#include "snapshot/uffd/handshake.h"

#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "core/config/vm_config.h"
#include "core/json/document.h"
#include "core/memory/guest_memory.h"

namespace ember::snapshot {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on `fd` until `until`: false when the time ran out.
Result<bool> wait_for(int fd, short events, Clock::time_point until) {
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return fail_errno("poll");
    }
}

Result<sockaddr_un> address_of(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return fail("the socket path must have 1 to " + std::to_string(sizeof addr.sun_path - 1) +
                    " bytes");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

}  // namespace

UffdPeer peer_of(int connection) {
    UffdPeer peer;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) peer.pid = cred.pid;
    if (peer.pid > 0)
        peer.pidfd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, peer.pid, 0)));
    return peer;
}

std::string encode_uffd_regions(std::span<const UffdRegion> regions) {
    std::string out = "[";
    for (const auto& r : regions) {
        if (out.size() > 1) out += ",";
        out += "{\"base_host_virt_addr\":" + std::to_string(r.base_host_virt_addr) +
               ",\"size\":" + std::to_string(r.size) + ",\"offset\":" + std::to_string(r.offset) +
               ",\"page_size\":" + std::to_string(r.page_size) +
               ",\"page_size_kib\":" + std::to_string(r.page_size) + "}";
    }
    return out + "]";
}

Result<std::vector<UffdRegion>> parse_uffd_regions(std::string_view text) {
    if (text.size() > kMaxUffdMessage)
        return fail("the regions message has " + std::to_string(text.size()) +
                    " bytes, more than " + std::to_string(kMaxUffdMessage));
    auto root = json::parse(text);
    const json::Array* array = root ? root->array() : nullptr;
    if (!array)
        return fail(std::string("the regions message is not a JSON array") +
                    (root ? "" : ": " + root.error().message));
    std::vector<UffdRegion> regions;
    for (const json::Value& element : *array) {
        const std::string where = "region " + std::to_string(regions.size());
        if (regions.size() == kMaxUffdRegions)
            return fail("more than " + std::to_string(kMaxUffdRegions) + " regions");
        const json::Object* o = element.object();
        if (!o) return fail(where + ": not an object");
        auto field = [&](const char* name, bool required, uint64_t& out) -> Result<void> {
            const json::Value* value = o->find(name);
            if (!value) {
                if (required) return fail(where + ": no " + name);
                return {};
            }
            auto n = value->u64();
            if (!n) return fail(where + ": " + name + " is not a non-negative integer");
            out = *n;
            return {};
        };
        UffdRegion r;
        EMBER_TRY(field("base_host_virt_addr", true, r.base_host_virt_addr));
        EMBER_TRY(field("size", true, r.size));
        EMBER_TRY(field("offset", true, r.offset));
        EMBER_TRY(field("page_size_kib", false, r.page_size));
        EMBER_TRY(field("page_size", r.page_size == 0, r.page_size));
        if (r.page_size != kGuestPageSize && r.page_size != kHugePageSize)
            return fail(where + ": page size " + std::to_string(r.page_size) +
                        " is neither 4 KiB nor 2 MiB");
        if (r.size == 0 || r.size % r.page_size != 0 || r.offset % r.page_size != 0 ||
            r.base_host_virt_addr % r.page_size != 0)
            return fail(where +
                        ": size, offset and address must be non-zero multiples of the "
                        "page size");
        if (r.offset + r.size < r.offset || r.base_host_virt_addr + r.size < r.base_host_virt_addr)
            return fail(where + ": wraps around");
        regions.push_back(r);
    }
    if (regions.empty()) return fail("no regions");
    return regions;
}

Result<UniqueFd> send_uffd_handshake(const std::string& socket_path,
                                     std::span<const UffdRegion> regions, int uffd,
                                     std::chrono::milliseconds deadline) {
    const auto until = Clock::now() + deadline;
    auto addr = address_of(socket_path);
    EMBER_TRY(addr);
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock.valid()) return fail_errno("socket");
    if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
        // A listener whose backlog is full: wait for room, within the deadline.
        if (errno != EAGAIN && errno != EINPROGRESS)
            return fail_errno("no page-fault handler listens there");
        auto ready = wait_for(sock.get(), POLLOUT, until);
        EMBER_TRY(ready);
        int err = 0;
        socklen_t len = sizeof err;
        if (!*ready) return fail("the page-fault handler did not accept the connection in time");
        if (::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
            return fail_errno("no page-fault handler listens there", err);
    }
    const std::string message = encode_uffd_regions(regions);
    size_t sent = 0;
    while (sent < message.size()) {
        iovec iov{const_cast<char*>(message.data() + sent), message.size() - sent};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
        if (sent == 0) {  // the fd travels with the first byte
            msg.msg_control = control.data();
            msg.msg_controllen = control.size();
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            std::memcpy(CMSG_DATA(c), &uffd, sizeof uffd);
        }
        const ssize_t n = ::sendmsg(sock.get(), &msg, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return fail_errno("sending the regions to the page-fault handler");
        auto ready = wait_for(sock.get(), POLLOUT, until);
        EMBER_TRY(ready);
        if (!*ready) return fail("the page-fault handler did not take the regions in time");
    }
    return sock;
}

// Whether `fd` is a userfaultfd: a handler given a pipe or a file instead would wait on it for ever
// and then report that it had served a VM. /proc names the descriptor's kind; where /proc is
// missing, UFFDIO_API tells a userfaultfd (EINVAL: its API was agreed already) from anything else
// (ENOTTY).
bool is_userfaultfd(int fd) {
    char link[64] = {};
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
    if (n > 0) return std::string_view(link, static_cast<size_t>(n)) == "anon_inode:[userfaultfd]";
    uffdio_api api{};
    api.api = UFFD_API;
    return ::ioctl(fd, UFFDIO_API, &api) == 0 || errno != ENOTTY;
}

Result<UffdHandshake> receive_uffd_handshake(int listen_fd, std::chrono::milliseconds deadline) {
    const auto until = Clock::now() + deadline;
    auto ready = wait_for(listen_fd, POLLIN, until);
    EMBER_TRY(ready);
    if (!*ready) return fail("no VMM connected in time");
    UffdHandshake h;
    h.connection = UniqueFd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!h.connection.valid()) return fail_errno("accept");
    h.peer = peer_of(h.connection.get());
    std::string message;
    for (;;) {
        auto in = wait_for(h.connection.get(), POLLIN, until);
        EMBER_TRY(in);
        if (!*in) return fail("the VMM sent no complete regions message in time");
        std::array<char, 4096> buf{};
        iovec iov{buf.data(), buf.size()};
        alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * 4)> control{};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        const ssize_t n = ::recvmsg(h.connection.get(), &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) return fail_errno("reading the regions message");
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            const size_t fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < fds; ++i) {
                int fd = -1;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                UniqueFd owned(fd);  // every fd received is closed unless it is the first
                if (!h.uffd.valid()) h.uffd = std::move(owned);
            }
        }
        if ((msg.msg_flags & MSG_CTRUNC) != 0) return fail("more file descriptors than one");
        if (n == 0) return fail("the VMM closed the connection before its message was whole");
        message.append(buf.data(), static_cast<size_t>(n));
        if (message.size() > kMaxUffdMessage)
            return fail("the regions message is longer than " + std::to_string(kMaxUffdMessage) +
                        " bytes");
        // One array, sent whole: it is complete once it parses.
        auto regions = parse_uffd_regions(message);
        if (!regions && message.find_last_not_of(" \t\r\n") != std::string::npos &&
            message[message.find_last_not_of(" \t\r\n")] != ']')
            continue;
        EMBER_TRY(regions);
        if (!h.uffd.valid()) return fail("the regions message came without a userfaultfd");
        if (!is_userfaultfd(h.uffd.get()))
            return fail("the descriptor that came with the regions message is not a userfaultfd");
        h.regions = std::move(*regions);
        return h;
    }
}

}  // namespace ember::snapshot
