/* Loads an empty IDT and raises #UD: no handler, #DF, no handler, triple fault. It first says where
 * the #UD is, so the host can check where ember says the guest faulted. */
#include "guest.h"

extern const char triple_fault_ud2[];

int guest_main(void) {
    puts("about to triple-fault at ");
    put_hex((uint64_t)triple_fault_ud2);
    puts("\n");
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) empty = {0, 0};
    __asm__ volatile("lidt %0\n.global triple_fault_ud2\ntriple_fault_ud2: ud2" ::"m"(empty));
    return 0;
}
