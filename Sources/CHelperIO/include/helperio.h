// What ccdeck's small static clients (ccdeck-dockerrun, ccdeck-incusexec) share: HTTP/1.1 over
// a daemon's unix socket, read to the end, and a request body read from the top of stdin.
#ifndef CCDECK_HELPERIO_H
#define CCDECK_HELPERIO_H

#include <stddef.h>

// A growing buffer, always NUL-terminated after its `n` bytes.
typedef struct { char *p; size_t n, cap; } buf_t;

// How a client says what went wrong, in its CLI's words; each of these exits.
typedef struct {
    const char *socket_path;
    long limit;  // seconds the daemon has to answer each request; 0: no limit
    void (*fail)(const char *what, const char *why);
    void (*cannot_connect)(const char *socket_path, const char *why);
    void (*timed_out)(const char *socket_path, long limit);
} hio_client;

extern hio_client hio;

// Takes `SOCKET NAME [SECONDS]` from argv (else prints `usage` and exits with `usage_status`) into
// `hio`, with `client`'s ways of failing; NAME percent-encoded into `name`.
void hio_start(int argc, char **argv, const char *usage, int usage_status, hio_client client, char *name, size_t size);

int hio_write_all(int fd, const void *data, size_t n);
void hio_append(buf_t *b, const void *data, size_t n);
// Drops the first `n` bytes.
void hio_consume(buf_t *b, size_t n);
// Gives the daemon `seconds` (0: forever) to say something on `fd`.
void hio_answer_within(int fd, long seconds);
// A connection to the daemon, answers within `hio.limit`.
int hio_dial(void);
// Reads until the end of a response's head; returns its status, with the head (and what came
// after it) in `b` and the offset of what follows the head in *body.
int hio_read_head(int fd, buf_t *b, size_t *body);
// The rest of an answer sent with "Connection: close", whose head `b` holds (`at`: where what
// follows it starts): its body, unchunked, into `out`. Closes `fd` and empties `b`.
void hio_rest(int fd, buf_t *b, size_t at, buf_t *out);
// Reads stdin's first line (the body's length) and the body; what follows goes to `rest`.
char *hio_read_body(size_t *length, buf_t *rest, const char *program);
// `name` percent-encoded for a path (letters, digits, '-', '_' and '.' as they are).
void hio_path_name(const char *name, char *out, size_t size);

#endif
