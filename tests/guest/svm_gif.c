/* Uses nested virtualization as far as a snapshot must carry it: with SVM on (EFER.SVME) it clears
 * the global interrupt flag (CLGI), lets a LAPIC timer interrupt fire that must then wait, and says
 * "gif clear". A VM restored from a snapshot taken then must keep GIF clear: the guest waits for
 * its generation ID to change (ember writes a new one at a restore), finds the timer not taken and
 * says "gif held", then sets GIF (STGI) and takes it: "tick". A restore that lost the nested state
 * delivers the timer at once: "gif lost". A guest not given SVM says "no svm". */
#include "guest.h"

#define LAPIC 0xfee00000ull
#define VECTOR 0x32
#define GENID ((const volatile uint64_t*)0xe0040)
#define MSR_EFER 0xc0000080u
#define EFER_SVME (1ull << 12)

volatile uint64_t ticks;

COUNTING_IRQ_HANDLER(timer_handler, ticks);

static inline void wrmsr(uint32_t index, uint64_t v) {
    __asm__ volatile("wrmsr" ::"c"(index), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static void halt(void) {
    for (;;) __asm__ volatile("cli; hlt");
}

int guest_main(void) {
    uint32_t a, b, c, d;
    cpuid(0x80000001, 0, &a, &b, &c, &d);
    if (!(c & (1u << 2))) {
        puts("no svm\n");
        halt();
    }
    map_high_mmio();
    set_idt_gate(VECTOR, timer_handler);
    load_idt();
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
    __asm__ volatile("clgi");
    mmio_write32(LAPIC + 0xf0, 0x1ff);   /* enabled, spurious vector 0xff */
    mmio_write32(LAPIC + 0x3e0, 0xb);    /* divide by 1 */
    mmio_write32(LAPIC + 0x320, VECTOR); /* one-shot, unmasked */
    mmio_write32(LAPIC + 0x380, 1000);
    __asm__ volatile("sti");
    while (mmio_read32(LAPIC + 0x390) != 0) __asm__ volatile("pause");
    const uint64_t lo = GENID[0], hi = GENID[1];
    puts(ticks ? "gif lost\n" : "gif clear\n");
    while (GENID[0] == lo && GENID[1] == hi) __asm__ volatile("pause");
    puts(ticks ? "gif lost\n" : "gif held\n");
    __asm__ volatile("stgi");
    while (!ticks) __asm__ volatile("pause");
    puts("tick\n");
    halt();
    return 0;
}
