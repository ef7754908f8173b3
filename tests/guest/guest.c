#include "guest.h"

#define COM1 0x3f8
#define LSR_THR_EMPTY 0x20

void putc(char c) {
    while (!(inb(COM1 + 5) & LSR_THR_EMPTY)) {
    }
    outb(COM1, (uint8_t)c);
}

void puts(const char* s) {
    while (*s) putc(*s++);
}

void put_hex(uint64_t v) {
    puts("0x");
    for (int shift = 60; shift >= 0; shift -= 4) putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

void put_dec(uint64_t v) {
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts(&buf[i]);
}

void guest_reset(void) {
    outb(0x64, 0xfe); /* pulse the i8042's reset line */
    for (;;) __asm__ volatile("cli; hlt");
}

static uint64_t high_pd[512] __attribute__((aligned(4096)));

void map_high_mmio(void) {
    volatile uint64_t* pdpt = (volatile uint64_t*)0xa000; /* ember's boot PDPT */
    for (uint64_t i = 0; i < 512; ++i)
        high_pd[i] = (0xc0000000ull + (i << 21)) | 0x9b; /* P RW PWT PCD PS */
    pdpt[3] = (uint64_t)high_pd | 0x3;
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3)::"memory");
}

static struct idt_entry idt[256] __attribute__((aligned(16)));

void set_idt_gate(int vector, void (*handler)(void)) {
    uint64_t addr = (uint64_t)handler;
    idt[vector].offset_low = (uint16_t)addr;
    idt[vector].selector = 0x8; /* ember's boot code segment */
    idt[vector].ist = 0;
    idt[vector].type_attr = 0x8e; /* present, ring 0, 64-bit interrupt gate */
    idt[vector].offset_mid = (uint16_t)(addr >> 16);
    idt[vector].offset_high = (uint32_t)(addr >> 32);
    idt[vector].zero = 0;
}

void load_idt(void) {
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) idtr = {sizeof idt - 1, (uint64_t)idt};
    __asm__ volatile("lidt %0" ::"m"(idtr));
}
