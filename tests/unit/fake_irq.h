#pragma once

#include "core/devices/irq.h"

namespace ember::testing {

class CountingIrq : public IrqTrigger {
  public:
    void trigger() override { ++count; }
    int count = 0;
};

}  // namespace ember::testing
