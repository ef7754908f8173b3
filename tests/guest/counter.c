/* Counts forever at a fixed address the host reads (COUNTER_ADDR), reading the UART's LSR each
 * round so a PIO exit is often in flight when the host pauses it. */
#include "guest.h"

#define COUNTER_ADDR 0x300000ull

int guest_main(void) {
    volatile uint64_t* counter = (volatile uint64_t*)COUNTER_ADDR;
    puts("counting\n");
    for (;;) {
        *counter = *counter + 1;
        (void)inb(0x3fd);
    }
}
