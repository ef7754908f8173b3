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
