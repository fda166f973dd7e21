#define _GNU_SOURCE
#include "helperio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

hio_client hio;

int hio_write_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

void hio_append(buf_t *b, const void *data, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        if (!(b->p = realloc(b->p, b->cap))) hio.fail("out of memory", "realloc");
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
}

void hio_consume(buf_t *b, size_t n) {
    memmove(b->p, b->p + n, b->n - n);
    b->n -= n;
    b->p[b->n] = 0;
}

void hio_answer_within(int fd, long seconds) {
    struct timeval t = {.tv_sec = seconds};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
}

int hio_dial(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(hio.socket_path) >= sizeof addr.sun_path) hio.cannot_connect(hio.socket_path, "socket path too long");
    strcpy(addr.sun_path, hio.socket_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) hio.cannot_connect(hio.socket_path, strerror(errno));
    hio_answer_within(fd, hio.limit);
    return fd;
}

int hio_read_head(int fd, buf_t *b, size_t *body) {
    char chunk[4096];
    for (;;) {
        char *end = b->p ? strstr(b->p, "\r\n\r\n") : NULL;
        if (end) {
            *body = (size_t)(end - b->p) + 4;
            int status = 0;
            if (sscanf(b->p, "HTTP/%*d.%*d %d", &status) != 1) hio.fail("the daemon's answer", "not HTTP");
            return status;
        }
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) hio.timed_out(hio.socket_path, hio.limit);
        if (r <= 0) hio.fail("the daemon's answer", "it closed the connection");
        hio_append(b, chunk, (size_t)r);
    }
}

void hio_rest(int fd, buf_t *b, size_t at, buf_t *out) {
    char chunk[4096];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof chunk)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) hio.timed_out(hio.socket_path, hio.limit);
        if (r < 0) hio.fail("the daemon's answer", strerror(errno));
        hio_append(b, chunk, (size_t)r);
    }
    close(fd);
    b->p[at - 2] = 0;  // the head, alone, for the header search
    int chunked = strcasestr(b->p, "\r\ntransfer-encoding: chunked") != NULL;
    const char *p = b->p + at, *end = b->p + b->n;
    if (!chunked) {
        hio_append(out, p, (size_t)(end - p));
    } else {
        while (p < end) {
            unsigned long size = strtoul(p, NULL, 16);
            const char *line_end = strstr(p, "\r\n");
            if (!line_end || size == 0 || line_end + 2 + size > end) break;
            hio_append(out, line_end + 2, size);
            p = line_end + 2 + size + 2;
        }
    }
    if (!out->p) hio_append(out, "", 0);
    free(b->p);
    *b = (buf_t){0};
}

char *hio_read_body(size_t *length, buf_t *rest, const char *program) {
    buf_t b = {0};
    char chunk[65536];
    for (;;) {
        char *nl = b.p ? memchr(b.p, '\n', b.n) : NULL;
        if (nl) {
            char *after;
            unsigned long want = strtoul(b.p, &after, 10);
            if (after != nl || want == 0 || want > (64ul << 20)) hio.fail(program, "stdin does not start with a body length");
            size_t start = (size_t)(nl - b.p) + 1;
            if (b.n - start >= want) {
                char *body = malloc(want + 1);
                if (!body) hio.fail("out of memory", "malloc");
                memcpy(body, b.p + start, want);
                body[want] = 0;
                hio_append(rest, b.p + start + want, b.n - start - want);
                memset(b.p, 0, b.n);  // it may hold a token
                free(b.p);
                *length = want;
                return body;
            }
        }
        ssize_t r = read(0, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) hio.fail(program, "stdin ended before the request's body");
        hio_append(&b, chunk, (size_t)r);
    }
}

void hio_path_name(const char *name, char *out, size_t size) {
    size_t w = 0;
    for (const unsigned char *c = (const unsigned char *)name; *c && w + 4 < size; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("-_.", *c)) {
            out[w++] = (char)*c;
        } else {
            w += (size_t)snprintf(out + w, 4, "%%%02X", *c);
        }
    }
    out[w] = 0;
}

void hio_start(int argc, char **argv, const char *usage, int usage_status, hio_client client, char *name, size_t size) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s\n", usage);
        exit(usage_status);
    }
    hio = client;
    hio.socket_path = argv[1];
    hio.limit = argc == 4 ? strtol(argv[3], NULL, 10) : 0;
    hio_path_name(argv[2], name, size);
}
