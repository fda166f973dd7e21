// ccdeck-incusexec: `incus exec -T` spoken straight to incusd's unix socket.
//
//   ccdeck-incusexec SOCKET INSTANCE [SECONDS] < LENGTH "\n" EXEC-BODY AGENT-STDIN...
//
// Asks incusd to run EXEC-BODY (the API's exec request, written by ccdeck, on stdin so that
// nothing of it is in argv) in INSTANCE with its streams on websockets, passes the rest of stdin
// to the command (its end as incus's end-of-stream barrier), copies the command's stdout and
// stderr back, forwards SIGTERM, SIGINT and SIGHUP to it, and exits with its exit status. Like
// the CLI it stands in for: incusd's refusals are printed as "Error: …" with exit status 1. A
// daemon that does not answer a request within SECONDS (the streams have no limit) is an error
// too, where the CLI would hang.
//
// Why: the incus CLI is a Go program that spends ~16 ms starting and asking incusd for its
// server description before its first request, on every run's path. This makes the same
// requests in well under a millisecond. Written in C and linked statically, like
// ccdeck-dockerrun: nothing to load when it starts.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helperio.h"

static void fail(const char *what, const char *why) {
    fprintf(stderr, "Error: %s: %s\n", what, why);
    exit(1);
}

static void cannot_connect(const char *socket_path, const char *why) {
    fprintf(stderr, "Error: cannot connect to incusd at unix:%s: %s\n", socket_path, why);
    exit(1);
}

static void timed_out(const char *socket_path, long limit) {
    fprintf(stderr, "Error: incusd at unix:%s did not answer within %ld s\n", socket_path, limit);
    exit(1);
}

// One request with "Connection: close", its answer read to the end: the status, the body
// (unchunked) in `out`.
static int call(const char *method, const char *path, const char *body, size_t length, buf_t *out) {
    int fd = hio_dial();
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: incus\r\nUser-Agent: ccdeck-incusexec\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", method, path, length);
    if (n <= 0 || (size_t)n >= sizeof head || !hio_write_all(fd, head, (size_t)n) || (length && !hio_write_all(fd, body, length)))
        fail("cannot talk to incusd", strerror(errno));
    buf_t b = {0};
    size_t at;
    int status = hio_read_head(fd, &b, &at);
    hio_rest(fd, &b, at, out);
    return status;
}

// The JSON string after `"key":` in `json` (escapes kept as they are: incusd's ids, secrets and
// messages are plain), copied into `out`; 0 when there is none.
static int string_field(const char *json, const char *key, char *out, size_t size) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = strstr(json, pattern);
    if (!p) return 0;
    p += strlen(pattern);
    while (*p == ' ') p++;
    if (*p != '"') return 0;
    size_t n = 0;
    for (p++; *p && *p != '"' && n + 1 < size; p++) {
        if (*p == '\\' && p[1]) p++;
        out[n++] = *p;
    }
    out[n] = 0;
    return 1;
}

// incusd's own words for a refusal (the "error" of its answer), and the CLI's exit status.
static void refused(const buf_t *body, int status) {
    char why[1024];
    if (!string_field(body->p, "error", why, sizeof why) || !*why) snprintf(why, sizeof why, "HTTP %d", status);
    fprintf(stderr, "Error: %s\n", why);
    exit(1);
}

// MARK: websockets (RFC 6455): a client's frames are masked, incusd's are not.

enum { WS_CONTINUATION = 0x0, WS_TEXT = 0x1, WS_BINARY = 0x2, WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xA };

typedef struct {
    int fd;
    buf_t in;     // bytes read, not yet a whole frame
    int ended;    // a barrier (an empty text message) or a close came, or the connection ended
    int last;     // the opcode of the message a continuation continues
} ws_t;

static void ws_open(ws_t *ws, const char *operation, const char *secret) {
    ws->fd = hio_dial();
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "GET %s/websocket?secret=%s HTTP/1.1\r\nHost: incus\r\nUser-Agent: ccdeck-incusexec\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: Y2NkZWNrLWluY3VzZXhlYw==\r\n\r\n", operation, secret);
    if (n <= 0 || (size_t)n >= sizeof head || !hio_write_all(ws->fd, head, (size_t)n)) fail("cannot talk to incusd", strerror(errno));
    buf_t b = {0};
    size_t at;
    int status = hio_read_head(ws->fd, &b, &at);
    if (status != 101) fail("incusd refused the command's stream", "no websocket");
    hio_append(&ws->in, b.p + at, b.n - at);  // a frame may have come with the head
    if (!ws->in.p) hio_append(&ws->in, "", 0);
    free(b.p);
    hio_answer_within(ws->fd, 0);  // a stream may be quiet for hours
}

// Appends one masked frame to `q`.
static void ws_frame(buf_t *q, int opcode, const void *data, size_t n) {
    unsigned char head[14];
    size_t h = 0;
    head[h++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        head[h++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        head[h++] = 0x80 | 126;
        head[h++] = (unsigned char)(n >> 8);
        head[h++] = (unsigned char)n;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) head[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    uint32_t r = (uint32_t)random();
    unsigned char key[4];
    memcpy(key, &r, 4);
    memcpy(head + h, key, 4);
    h += 4;
    hio_append(q, head, h);
    size_t at = q->n;
    hio_append(q, data, n);
    for (size_t i = 0; i < n; i++) q->p[at + i] ^= (char)key[i & 3];
}

// One whole frame, written at once (small ones only: control messages, pongs).
static void ws_send(ws_t *ws, int opcode, const void *data, size_t n) {
    buf_t q = {0};
    ws_frame(&q, opcode, data, n);
    if (!hio_write_all(ws->fd, q.p, q.n)) ws->ended = 1;
    free(q.p);
}

// Handles the whole frames `ws` holds: data to `out` (-1: dropped), a barrier or close ends it,
// a ping is answered. A reader gone from stdout ends this client, as it ends the CLI.
static void ws_frames(ws_t *ws, int out, buf_t *queue) {
    for (;;) {
        const unsigned char *p = (const unsigned char *)ws->in.p;
        size_t n = ws->in.n;
        if (n < 2) return;
        int opcode = p[0] & 0x0F;
        uint64_t size = p[1] & 0x7F;
        size_t h = 2;
        if (size == 126) {
            if (n < 4) return;
            size = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (size == 127) {
            if (n < 10) return;
            size = 0;
            for (int i = 0; i < 8; i++) size = (size << 8) | p[2 + i];
            h = 10;
        }
        unsigned char key[4] = {0};
        int masked = p[1] & 0x80;
        if (masked) {
            if (n < h + 4) return;
            memcpy(key, p + h, 4);
            h += 4;
        }
        if (size > (1ull << 31)) fail("incusd's stream", "a frame too large");
        if (n - h < size) return;
        unsigned char *payload = (unsigned char *)ws->in.p + h;
        if (masked) for (size_t i = 0; i < size; i++) payload[i] ^= key[i & 3];
        if (opcode == WS_CONTINUATION) opcode = ws->last;
        else if (opcode == WS_TEXT || opcode == WS_BINARY) ws->last = opcode;
        switch (opcode) {
        case WS_BINARY:
            if (out >= 0 && !hio_write_all(out, payload, size) && out == 1) exit(141);
            break;
        case WS_TEXT:  // incus's end-of-stream barrier
        case WS_CLOSE:
            ws->ended = 1;
            break;
        case WS_PING:  // answered in turn, after what is already on its way
            if (queue) ws_frame(queue, WS_PONG, payload, size);
            else ws_send(ws, WS_PONG, payload, size);
            break;
        default:
            break;
        }
        hio_consume(&ws->in, h + size);
    }
}

// Reads what `ws` has and handles it; a connection that ends ends the stream.
static void ws_read(ws_t *ws, int out, buf_t *queue) {
    char chunk[65536];
    ssize_t r = read(ws->fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) return;
    if (r <= 0) {
        ws->ended = 1;
        return;
    }
    hio_append(&ws->in, chunk, (size_t)r);
    ws_frames(ws, out, queue);
}

static volatile sig_atomic_t pending_signal;

static void noted(int sig) { pending_signal = sig; }

int main(int argc, char **argv) {
    char name[256];
    hio_start(argc, argv, "ccdeck-incusexec SOCKET INSTANCE [SECONDS] < LENGTH NEWLINE EXEC-BODY STDIN...", 1,
              (hio_client){.fail = fail, .cannot_connect = cannot_connect, .timed_out = timed_out}, name, sizeof name);
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));

    // Signals for the command are noted, then sent on over the control stream (as the CLI does).
    sigset_t block, none;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &none);
    struct sigaction sa = {.sa_handler = noted};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    size_t length;
    buf_t input = {0};
    char *body = hio_read_body(&length, &input, "ccdeck-incusexec");
    char path[512];
    buf_t out = {0};
    snprintf(path, sizeof path, "/1.0/instances/%s/exec", name);
    int status = call("POST", path, body, length, &out);
    free(body);
    if (status != 200 && status != 201 && status != 202) refused(&out, status);
    char operation[256], secrets[4][256];
    const char *fds = strstr(out.p, "\"fds\":");
    if (!string_field(out.p, "operation", operation, sizeof operation) || !fds
        || !string_field(fds, "0", secrets[0], sizeof secrets[0]) || !string_field(fds, "1", secrets[1], sizeof secrets[1])
        || !string_field(fds, "2", secrets[2], sizeof secrets[2]) || !string_field(fds, "control", secrets[3], sizeof secrets[3]))
        fail("incusd's answer", "no streams for the command");
    for (char *c = operation; *c; c++)
        if (*c == ' ' || *c == '\r' || *c == '\n') fail("incusd's answer", "an operation that is not a path");

    // The command starts once all four streams are there: stdin, stdout, stderr, control.
    ws_t ws[4] = {0};
    for (int i = 0; i < 4; i++) ws_open(&ws[i], operation, secrets[i]);

    // Pump: stdin to the command in frames (its end as a barrier), its stdout and stderr out,
    // until both end. stdin is read only while little waits to go: a slow reader holds it back.
    buf_t queue = {0};  // frames for the command's stdin, from `sent` on not yet written
    size_t sent = 0;
    int stdin_open = 1, barrier_sent = 0;
    char chunk[65536];
    while (!(ws[1].ended && ws[2].ended)) {
        if (pending_signal) {
            char message[96];
            int n = snprintf(message, sizeof message, "{\"command\":\"signal\",\"signal\":%d,\"args\":{}}", (int)pending_signal);
            pending_signal = 0;
            if (!ws[3].ended) ws_send(&ws[3], WS_TEXT, message, (size_t)n);
        }
        if (ws[0].ended) {
            input.n = queue.n = sent = 0;  // nobody reads the command's stdin any more
        } else if (sent == queue.n) {
            queue.n = sent = 0;
            if (input.n > 0) {
                ws_frame(&queue, WS_BINARY, input.p, input.n);
                input.n = 0;
            } else if (!stdin_open && !barrier_sent) {
                ws_frame(&queue, WS_TEXT, "", 0);
                barrier_sent = 1;
            }
        }
        struct pollfd p[5] = {
            {.fd = stdin_open && input.n < (1u << 20) ? 0 : -1, .events = POLLIN},
            {.fd = ws[0].ended ? -1 : ws[0].fd, .events = (short)(POLLIN | (sent < queue.n ? POLLOUT : 0))},
            {.fd = ws[1].ended ? -1 : ws[1].fd, .events = POLLIN},
            {.fd = ws[2].ended ? -1 : ws[2].fd, .events = POLLIN},
            {.fd = ws[3].ended ? -1 : ws[3].fd, .events = POLLIN},
        };
        if (ppoll(p, 5, NULL, &none) < 0) {
            if (errno == EINTR) continue;
            fail("ccdeck-incusexec", strerror(errno));
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(0, chunk, sizeof chunk);
            if (r > 0) hio_append(&input, chunk, (size_t)r);
            else if (r == 0 || errno != EINTR) stdin_open = 0;
        }
        if (p[1].revents & POLLOUT) {
            ssize_t r = send(ws[0].fd, queue.p + sent, queue.n - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (r > 0) sent += (size_t)r;
            else if (r < 0 && errno != EAGAIN && errno != EINTR) ws[0].ended = 1;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) ws_read(&ws[0], -1, &queue);
        if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) ws_read(&ws[1], 1, NULL);
        if (p[3].revents & (POLLIN | POLLHUP | POLLERR)) ws_read(&ws[2], 2, NULL);
        if (p[4].revents & (POLLIN | POLLHUP | POLLERR)) ws_read(&ws[3], -1, NULL);
    }
    for (int i = 0; i < 4; i++) close(ws[i].fd);

    // Its output has ended: it has exited, or is about to; the operation says how.
    out.n = 0;
    snprintf(path, sizeof path, "%s/wait?timeout=%ld", operation, hio.limit > 0 ? hio.limit : -1);
    status = call("GET", path, "", 0, &out);
    if (status != 200) refused(&out, status);
    const char *code = strstr(out.p, "\"return\":");
    if (!code) {
        char why[1024];
        if (string_field(out.p, "err", why, sizeof why) && *why) fail("the command", why);
        fail("incusd's answer", "no exit status for the command");
    }
    return (int)(strtol(code + 9, NULL, 10) & 0xFF);
}
