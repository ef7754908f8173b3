/* Loads an empty IDT and raises #UD: no handler, #DF, no handler, triple fault. */
#include "guest.h"

int guest_main(void) {
    puts("about to triple-fault\n");
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) empty = {0, 0};
    __asm__ volatile("lidt %0; ud2" ::"m"(empty));
    return 0;
}
