#include "tests/support/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace ember::testing {
namespace {

Result<void> set_up(const std::string& name) {
    return set_link(name, true);
}

Result<void> tun_persist(const std::string& name, bool persist, short extra_flags = 0,
                         short kind = IFF_TAP) {
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return fail_errno("/dev/net/tun");
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = static_cast<short>(kind | IFF_NO_PI | IFF_VNET_HDR | extra_flags);
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) return fail_errno("TUNSETIFF " + name);
    if (::ioctl(fd.get(), TUNSETPERSIST, persist ? 1 : 0) < 0)
        return fail_errno("TUNSETPERSIST " + name);
    return {};
}

}  // namespace

NetnsHolder::NetnsHolder() {
    int ready[2];
    if (::pipe(ready) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
        if (::unshare(CLONE_NEWNET) != 0) ::_exit(1);
        char c = 1;
        (void)!::write(ready[1], &c, 1);
        ::pause();
        ::_exit(0);
    }
    char c = 0;
    (void)!::read(ready[0], &c, 1);
    ::close(ready[0]);
    ::close(ready[1]);
}

NetnsHolder::~NetnsHolder() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
}

Result<void> enter_new_netns() {
    if (::unshare(CLONE_NEWNET) < 0) return fail_errno("unshare(CLONE_NEWNET)");
    // Without IPv6 the kernel sends nothing of its own (router solicitations, MLD) on new
    // interfaces, so tests see only their own frames.
    if (FILE* f = std::fopen("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w")) {
        std::fputs("1", f);
        std::fclose(f);
    }
    return set_up("lo");
}

Result<void> set_link(const std::string& name, bool up) {
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock.valid()) return fail_errno("socket");
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) < 0) return fail_errno("SIOCGIFFLAGS " + name);
    if (up)
        ifr.ifr_flags |= IFF_UP;
    else
        ifr.ifr_flags &= ~IFF_UP;
    if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) < 0) return fail_errno("SIOCSIFFLAGS " + name);
    return {};
}

Result<void> create_tap(const std::string& name) {
    EMBER_TRY(tun_persist(name, true));
    return set_up(name);
}

Result<void> create_multi_queue_tap(const std::string& name) {
    EMBER_TRY(tun_persist(name, true, IFF_MULTI_QUEUE));
    return set_up(name);
}

Result<void> create_tun(const std::string& name) {
    EMBER_TRY(tun_persist(name, true, 0, IFF_TUN));
    return set_up(name);
}

Result<void> delete_tap(const std::string& name) {
    return tun_persist(name, false);
}

Result<PacketSocket> PacketSocket::open(const std::string& ifname) {
    UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
    if (!fd.valid()) return fail_errno("AF_PACKET socket");
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
    if (addr.sll_ifindex == 0) return fail("no interface " + ifname);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
        return fail_errno("bind " + ifname);
    // Straight to the driver: a tap's transmit queue drops everything until the kernel's link
    // watcher, a work item that may run late on a busy host, activates it after the carrier
    // comes on, and a send into it still reports success.
    int bypass = 1;
    if (::setsockopt(fd.get(), SOL_PACKET, PACKET_QDISC_BYPASS, &bypass, sizeof bypass) < 0)
        return fail_errno("PACKET_QDISC_BYPASS");
    return PacketSocket(std::move(fd));
}

Result<void> PacketSocket::send(const std::string& frame) const {
    if (::send(fd_.get(), frame.data(), frame.size(), 0) != static_cast<ssize_t>(frame.size()))
        return fail_errno("send");
    return {};
}

std::string PacketSocket::receive(int timeout_ms) const {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return {};
    std::string frame(70000, '\0');
    ssize_t n = ::recv(fd_.get(), frame.data(), frame.size(), 0);
    frame.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return frame;
}

}  // namespace ember::testing
