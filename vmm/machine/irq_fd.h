// A device interrupt as an irqfd: an eventfd registered with KVM for one GSI.
#pragma once

#include <memory>

#include "core/base/event_fd.h"
#include "core/devices/irq.h"
#include "core/kvm/vm.h"

namespace ember {

class IrqFd : public IrqTrigger {
  public:
    static Result<std::unique_ptr<IrqFd>> create(const Vm& vm, uint32_t gsi) {
        auto fd = EventFd::create();
        EMBER_TRY(fd);
        EMBER_TRY(vm.register_irqfd(fd->fd(), gsi));
        return std::make_unique<IrqFd>(std::move(*fd));
    }
    explicit IrqFd(EventFd fd) : fd_(std::move(fd)) {}
    void trigger() override { fd_.signal(); }

  private:
    EventFd fd_;
};

}  // namespace ember
