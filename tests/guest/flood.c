/* Writes 200 KiB to the console as fast as the CPU can (rep outsb), more than ember's 64 KiB
 * output buffer and a pipe together hold, then resets. */
#include "guest.h"

static char line[4096];

int guest_main(void) {
    for (unsigned i = 0; i < sizeof line - 1; ++i) line[i] = 'x';
    line[sizeof line - 1] = '\n';
    for (int i = 0; i < 50; ++i) {
        const char* p = line;
        uint64_t n = sizeof line;
        __asm__ volatile("rep outsb" : "+S"(p), "+c"(n) : "d"((uint16_t)0x3f8) : "memory");
    }
    return 0;
}
