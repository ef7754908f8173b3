/* Writes Firecracker's boot-complete magic byte (123) to the first MMIO slot, where ember puts its
 * boot-timer device with --boot-timer. */
#include "guest.h"

int guest_main(void) {
    map_high_mmio();
    *(volatile uint8_t*)0xd0000000ull = 123;
    puts("boot timer written\n");
    return 0;
}
