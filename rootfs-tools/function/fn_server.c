/* The function in ember's function image: an HTTP/1.1 server on TCP 8080 that answers every
 * request with a JSON object holding this VM's invocation counter (1 for the first request it
 * serves) and the guest kernel's boot_id. A clone restored from a snapshot of a warm function
 * goes on counting from the snapshot's value, on its own.
 *
 * One request per connection (Connection: close), one connection at a time. Requests are read
 * up to their blank line, at most 8 KiB and for at most 5 s, so a client that stalls or sends
 * garbage delays others by no more than that. Prints one readiness line on stdout once it
 * listens. Static, no dependencies: built by rootfs-tools/build-rootfs. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_REQUEST 8192

static unsigned long long invocations;

static void read_boot_id(char* out, size_t size) {
    snprintf(out, size, "unknown");
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, out, size - 1);
    close(fd);
    if (n <= 0) return;
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

/* Reads until the end of the request head; 1 when there is one. */
static int read_request(int fd, char* buf, size_t size) {
    size_t len = 0;
    while (len < size - 1) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n <= 0) return 0;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n")) return 1;
    }
    return 0;
}

static void write_all(int fd, const char* data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n <= 0) return;
        data += n;
        len -= (size_t)n;
    }
}

static void serve(int client) {
    char request[MAX_REQUEST];
    const char* status = "200 OK";
    char body[256];
    if (read_request(client, request, sizeof request)) {
        char boot_id[64];
        read_boot_id(boot_id, sizeof boot_id);
        ++invocations;
        snprintf(body, sizeof body, "{\"invocation\": %llu, \"boot_id\": \"%s\"}\n", invocations,
                 boot_id);
    } else {
        status = "400 Bad Request";
        snprintf(body, sizeof body, "{\"error\": \"incomplete or oversized request\"}\n");
    }
    char head[160];
    int head_len = snprintf(head, sizeof head,
                            "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                            status, strlen(body));
    write_all(client, head, (size_t)head_len);
    write_all(client, body, strlen(body));
}

int main(int argc, char** argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8080;
    signal(SIGPIPE, SIG_IGN);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("fn-server: socket");
        return 1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(fd, 64) != 0) {
        perror("fn-server: bind/listen");
        return 1;
    }
    printf("fn-server: ready on port %d\n", port);
    fflush(stdout);
    for (;;) {
        int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("fn-server: accept");
            return 1;
        }
        struct timeval limit = {5, 0};
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
        serve(client);
        close(client);
    }
}
