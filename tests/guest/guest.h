/* The freestanding runtime of ember's test guests: port I/O, a polled 8250 console, the i8042
 * reset, and a few CPU helpers. Guests report over the serial port; the host test reads it. */
#pragma once

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v) {
    __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline void mmio_write32(uint64_t addr, uint32_t v) {
    *(volatile uint32_t*)addr = v;
}
static inline uint32_t mmio_read32(uint64_t addr) {
    return *(volatile uint32_t*)addr;
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t* a, uint32_t* b, uint32_t* c,
                         uint32_t* d) {
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}
static inline uint64_t rdmsr(uint32_t index) {
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
    return ((uint64_t)hi << 32) | lo;
}

/* How many times a guest polls for a device's answer before it gives up: seconds on hardware,
 * minutes emulated (tests/nested/run), where 1e8 spins gave up on healthy requests under ASan
 * while the other test of `ctest -j2` ran. The host test's failsafe bounds the test in any case. */
#define SPINS_BEFORE_GIVING_UP 10000000000ull

void putc(char c);
void puts(const char* s);
void put_hex(uint64_t v);
void put_dec(uint64_t v);
void guest_reset(void) __attribute__((noreturn));
int guest_main(void);

/* The LAPIC and IOAPIC live at 0xfee00000/0xfec00000, above the 1 GiB that ember's boot page
 * tables map: this maps 3-4 GiB uncached with 2 MiB pages. */
void map_high_mmio(void);

struct idt_entry {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t zero;
} __attribute__((packed));

/* Defines `void name(void)`, an interrupt handler that adds one to the volatile uint64_t `counter`
 * and signals the LAPIC's end of interrupt (movabs: a 32-bit displacement would sign-extend). */
#define COUNTING_IRQ_HANDLER(name, counter) \
    void name(void);                        \
    __asm__(".global " #name "\n" #name     \
            ":\n"                           \
            "  push %rax\n"                 \
            "  lock incq " #counter         \
            "(%rip)\n"                      \
            "  movl $0, %eax\n"             \
            "  movabs %eax, 0xfee000b0\n"   \
            "  pop %rax\n"                  \
            "  iretq\n")

void set_idt_gate(int vector, void (*handler)(void));
void load_idt(void);
