/* Copies the first four registers of the virtio-mmio device at BASE (virtio_blk_driver.h): magic,
 * version, device ID, vendor ID, with one `rep movsl`, over and over, and checks each copy against
 * what single reads returned first. KVM emulates the copy a register at a time, with an exit each,
 * and its completion of every register but the last leaves the next read waiting on the VMM: the
 * host test pauses and resumes the guest meanwhile. Counts good copies at COUNTER_ADDR; a bad one
 * is reported and resets the VM. */
#include "virtio_blk_driver.h"

#define COUNTER_ADDR 0x300000ull

int guest_main(void) {
    map_high_mmio();
    uint32_t want[4];
    for (int i = 0; i < 4; ++i) want[i] = mmio_read32(REG(4 * i));
    puts("copying\n");
    volatile uint64_t* counter = (volatile uint64_t*)COUNTER_ADDR;
    for (;;) {
        uint32_t got[4];
        void* dst = got;
        const void* src = (const void*)REG(0);
        uint64_t n = 4;
        __asm__ volatile("rep movsl" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
        for (int i = 0; i < 4; ++i) {
            if (got[i] == want[i]) continue;
            puts("mmio_rep: register ");
            put_dec((uint64_t)i);
            puts(" read ");
            put_hex(got[i]);
            puts(", not ");
            put_hex(want[i]);
            puts("\n");
            guest_reset();
        }
        *counter = *counter + 1;
    }
}
