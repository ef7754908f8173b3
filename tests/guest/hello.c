/* Prints one line over the polled UART and resets through the i8042. */
#include "guest.h"

int guest_main(void) {
    puts("hello from the test guest\n");
    return 0;
}
