/* Reads a line from the UART (polling LSR data-ready) and prints it back. */
#include "guest.h"

int guest_main(void) {
    char buf[64];
    unsigned n = 0;
    puts("ready\n");
    for (;;) {
        while (!(inb(0x3fd) & 0x01)) {
        }
        char c = (char)inb(0x3f8);
        if (c == '\r' || c == '\n' || n == sizeof buf - 1) break;
        buf[n++] = c;
    }
    buf[n] = 0;
    puts("got: ");
    puts(buf);
    puts("\n");
    return 0;
}
