/* Takes PIT interrupts through the IOAPIC (GSI 0 -> pin 0, as ember's MP table says) with the
 * PIC masked, counts five, and reports. If interrupts never arrive it hangs in HLT, and the host
 * test's timeout fails it. */
#include "guest.h"

#define LAPIC 0xfee00000ull
#define IOAPIC 0xfec00000ull
#define VECTOR 0x30

volatile uint64_t ticks;

COUNTING_IRQ_HANDLER(timer_handler, ticks);

static void ioapic_write(uint32_t reg, uint32_t value) {
    mmio_write32(IOAPIC, reg);
    mmio_write32(IOAPIC + 0x10, value);
}

int guest_main(void) {
    map_high_mmio();
    set_idt_gate(VECTOR, timer_handler);
    load_idt();
    outb(0x21, 0xff); /* mask both PICs: only the IOAPIC path may deliver */
    outb(0xa1, 0xff);
    mmio_write32(LAPIC + 0xf0, 0x1ff);  /* software-enable the LAPIC, spurious vector 0xff */
    ioapic_write(0x10 + 2 * 0, VECTOR); /* pin 0: fixed, edge, active high, unmasked */
    ioapic_write(0x11 + 2 * 0, 0);      /* destination APIC 0 */
    outb(0x43, 0x34);                   /* PIT channel 0, mode 2 */
    outb(0x40, 0x9c);                   /* divisor 11932: 100 Hz */
    outb(0x40, 0x2e);
    __asm__ volatile("sti");
    while (ticks < 5) __asm__ volatile("hlt");
    __asm__ volatile("cli");
    puts("pit: ");
    put_dec(ticks);
    puts(" interrupts through the IOAPIC\n");
    return 0;
}
