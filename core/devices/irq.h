// How a device raises its interrupt: an edge on its GSI. In the VMM it is an irqfd (an eventfd
// KVM listens on), so any thread may trigger it without an ioctl; tests count the calls.
#pragma once

namespace ember {

class IrqTrigger {
  public:
    virtual ~IrqTrigger() = default;
    virtual void trigger() = 0;
};

}  // namespace ember
