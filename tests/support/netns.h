// Networking for tests, all inside a network namespace the test process makes for itself, so no
// frame ever leaves it: a persistent tap, brought up, and a raw packet socket on an interface.
#pragma once

#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::testing {

// Moves this process into a new, empty network namespace (loopback only).
Result<void> enter_new_netns();

// A child process that holds a network namespace of its own for as long as this object lives.
class NetnsHolder {
  public:
    NetnsHolder();
    ~NetnsHolder();
    NetnsHolder(const NetnsHolder&) = delete;
    NetnsHolder& operator=(const NetnsHolder&) = delete;
    // "/proc/PID/ns/net"; the child is in its namespace once the constructor returns.
    std::string path() const { return "/proc/" + std::to_string(pid_) + "/ns/net"; }

  private:
    int pid_ = -1;
};

// Creates a persistent tap named `name` (not attached by anyone) and sets it up.
Result<void> create_tap(const std::string& name);
Result<void> delete_tap(const std::string& name);
// Sets an interface's link up or down, as `ip link set NAME up|down` does.
Result<void> set_link(const std::string& name, bool up);
// The same as `ip tuntap add NAME mode tap multi_queue`.
Result<void> create_multi_queue_tap(const std::string& name);
// The same as `ip tuntap add NAME mode tun`.
Result<void> create_tun(const std::string& name);

// An AF_PACKET socket bound to an interface: sends and receives whole Ethernet frames.
class PacketSocket {
  public:
    static Result<PacketSocket> open(const std::string& ifname);
    Result<void> send(const std::string& frame) const;
    // The next frame, or an empty string after timeout_ms.
    std::string receive(int timeout_ms) const;

  private:
    explicit PacketSocket(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

}  // namespace ember::testing
