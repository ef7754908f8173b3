/* Prints the VM generation ID (16 bytes at 0xe0040, where ember's VMGenID ADDR points) once, then
 * waits with interrupts on for the Generic Event Device's interrupt (GSI 3, routed through the
 * IOAPIC as an edge on vector 0x31) and the ID's change that comes with it. A VM restored from a
 * snapshot of this guest must print "ged interrupt" and a new ID. */
#include "guest.h"

#define LAPIC 0xfee00000ull
#define IOAPIC 0xfec00000ull
#define GED_GSI 3
#define VECTOR 0x31
#define GENID ((const volatile uint64_t*)0xe0040)

volatile uint64_t interrupts;

COUNTING_IRQ_HANDLER(ged_handler, interrupts);

static void ioapic_write(uint32_t reg, uint32_t value) {
    mmio_write32(IOAPIC, reg);
    mmio_write32(IOAPIC + 0x10, value);
}

static void print_id(uint64_t lo, uint64_t hi) {
    puts("genid ");
    put_hex(hi);
    put_hex(lo);
    puts("\n");
}

int guest_main(void) {
    map_high_mmio();
    set_idt_gate(VECTOR, ged_handler);
    load_idt();
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    mmio_write32(LAPIC + 0xf0, 0x1ff);
    ioapic_write(0x10 + 2 * GED_GSI, VECTOR); /* fixed, edge, active high, unmasked */
    ioapic_write(0x11 + 2 * GED_GSI, 0);
    uint64_t lo = GENID[0], hi = GENID[1];
    print_id(lo, hi);
    for (;;) {
        __asm__ volatile("cli");
        if (interrupts == 0) {
            __asm__ volatile("sti; hlt"); /* no interrupt can slip in between the two */
            continue;
        }
        puts("ged interrupt\n");
        if (GENID[0] == lo && GENID[1] == hi) puts("genid unchanged\n");
        lo = GENID[0];
        hi = GENID[1];
        print_id(lo, hi);
        interrupts = 0;
    }
}
