#include "virtio/net/tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "core/base/file_io.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace ember::virtio {
namespace {

unsigned flags_of(const TapOffloads& o) {
    return (o.csum ? TUN_F_CSUM : 0) | (o.tso4 ? TUN_F_TSO4 : 0) | (o.tso6 ? TUN_F_TSO6 : 0) |
           (o.ufo ? TUN_F_UFO : 0);
}

// A tun or tap device's IFF_* flags, from sysfs; 0 for any other interface or when unreadable.
unsigned tun_flags(const std::string& name) {
    UniqueFd fd(::open(("/sys/class/net/" + name + "/tun_flags").c_str(), O_RDONLY | O_CLOEXEC));
    char text[32] = {};
    if (!fd.valid() || ::read(fd.get(), text, sizeof text - 1) <= 0) return 0;
    return static_cast<unsigned>(std::strtoul(text, nullptr, 16));
}

}  // namespace

Result<Tap> Tap::open(const std::string& name) {
    const std::string who = "tap '" + name + "'";
    if (name.empty() || name.size() >= IFNAMSIZ) return fail(who + ": not a valid interface name");
    // TUNSETIFF would quietly create a missing tap; a user who named one expects it to exist.
    if (::if_nametoindex(name.c_str()) == 0)
        return fail(who + " does not exist (create it first, e.g. ip tuntap add " + name +
                    " mode tap)");
    int raw = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (raw < 0) return fail_errno(who + ": /dev/net/tun");
    UniqueFd fd(raw);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
        int err = errno;
        if (err == EBUSY) return fail(who + " is busy: another process has it open");
        if (err == EINVAL) {
            // The kernel refuses a single-queue attach to a multi-queue tap with the same EINVAL
            // as a tun. The device's flags in sysfs tell them apart without attaching to it (a
            // queue added to a tap another VMM uses would take some of its frames), where this
            // /sys shows ember's network namespace; elsewhere the message names both.
            const std::string hint =
                ": ember, like Firecracker, takes a single-queue tap (ip tuntap add " + name +
                " mode tap)";
            const unsigned flags = tun_flags(name);
            if (flags & IFF_MULTI_QUEUE) return fail(who + " is a multi-queue tap" + hint);
            if (flags & IFF_TUN) return fail(who + " is a tun" + hint);
            return fail(who + " is not a single-queue tap (a multi-queue tap, a tun or another " +
                        "kind of interface)" + hint);
        }
        return fail_errno(who + ": TUNSETIFF", err);
    }
    int hdr = kVnetHeaderSize;
    if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr) < 0) return fail_errno(who + ": TUNSETVNETHDRSZ");
    Tap tap(std::move(fd), name);
    // Probe each offload on its own: a tap that refuses one still offers the others.
    for (auto [flag, slot] : {std::pair{TUN_F_CSUM, &tap.supported_.csum},
                              std::pair{TUN_F_CSUM | TUN_F_TSO4, &tap.supported_.tso4},
                              std::pair{TUN_F_CSUM | TUN_F_TSO6, &tap.supported_.tso6},
                              std::pair{TUN_F_CSUM | TUN_F_UFO, &tap.supported_.ufo}})
        *slot = ::ioctl(tap.fd(), TUNSETOFFLOAD, static_cast<unsigned long>(flag)) == 0;
    if (::ioctl(tap.fd(), TUNSETOFFLOAD, 0ul) < 0) return fail_errno(who + ": TUNSETOFFLOAD");
    // A tap takes a frame whenever it can allocate one, unless its send buffer was given a size.
    int sndbuf = 0;
    tap.writes_can_wait_ =
        ::ioctl(tap.fd(), TUNGETSNDBUF, &sndbuf) < 0 || sndbuf != std::numeric_limits<int>::max();
    return tap;
}

Tap Tap::from_socket(UniqueFd socket, std::string name) {
    Tap tap(std::move(socket), std::move(name));
    tap.is_socket_ = true;
    return tap;
}

Result<void> Tap::set_offloads(const TapOffloads& offloads) const {
    if (is_socket_) {
        if (flags_of(offloads) == 0) return {};
        return fail("'" + name_ + "' is a socket standing in for a tap: it has no offloads");
    }
    if (::ioctl(fd(), TUNSETOFFLOAD, static_cast<unsigned long>(flags_of(offloads))) < 0)
        return fail_errno("tap '" + name_ + "': TUNSETOFFLOAD");
    return {};
}

ssize_t Tap::read(std::span<uint8_t> frame) const {
    const ssize_t n = retry_on_eintr([&] { return ::read(fd(), frame.data(), frame.size()); });
    return n < 0 ? -errno : n;
}

ssize_t Tap::write(std::span<const iovec> frame) const {
    const ssize_t n = retry_on_eintr(
        [&] { return ::writev(fd(), frame.data(), static_cast<int>(frame.size())); });
    return n < 0 ? -errno : n;
}

Result<uint16_t> Tap::mtu() const {
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return fail_errno("socket");
    UniqueFd s(sock);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    if (::ioctl(s.get(), SIOCGIFMTU, &ifr) < 0)
        return fail_errno("tap '" + name_ + "': SIOCGIFMTU");
    return static_cast<uint16_t>(ifr.ifr_mtu);
}

}  // namespace ember::virtio
