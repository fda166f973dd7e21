// ccdeck-dockerrun: `docker run -i` spoken straight to dockerd's unix socket.
//
//   ccdeck-dockerrun SOCKET NAME [SECONDS] < LENGTH "\n" CREATE-BODY AGENT-STDIN...
//
// Creates the container NAME from CREATE-BODY (the Engine API's JSON, written by ccdeck: it may
// hold a token, so it comes on stdin, never in argv), attaches to its stdin, stdout and stderr,
// starts it, passes the rest of stdin to it (closing its stdin at the end), splits what it
// prints back onto stdout and stderr, and exits with its exit status once it has stopped. Like
// the CLI it stands in for: the daemon's refusals are printed as "docker: Error response from
// daemon: …" with exit status 125, and its own death leaves the container running. A daemon
// that does not answer a request within SECONDS (the stream itself has no limit) is an error
// too, where the CLI would hang.
//
// Why: the docker CLI is a Go program that spends 10-20 ms of wall time and ~15 ms of CPU
// starting and negotiating before its first request, on every run's path. This does the same
// five requests in well under a millisecond. Written in C and linked statically, like
// ccdeck-netbridge: nothing to load when it starts.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helperio.h"

static char name[256];  // percent-encoded

static void fail(const char *what, const char *why) {
    fprintf(stderr, "docker: %s: %s\n", what, why);
    exit(125);
}

static void cannot_connect(const char *socket_path, const char *why) {
    (void)why;
    fprintf(stderr, "docker: Cannot connect to the Docker daemon at unix://%s. Is the docker daemon running?\n", socket_path);
    exit(125);
}

// A read that waited `limit` seconds for the daemon (SO_RCVTIMEO) and got nothing.
static void timed_out(const char *socket_path, long limit) {
    fprintf(stderr, "docker: the Docker daemon at unix://%s did not answer within %ld s\n", socket_path, limit);
    exit(125);
}

// Sends one request; `upgrade` asks for the raw stream (attach).
static int request(const char *method, const char *path, const char *body, size_t length, int upgrade) {
    int fd = hio_dial();
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: docker\r\nUser-Agent: ccdeck-dockerrun\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, path, upgrade ? "Connection: Upgrade\r\nUpgrade: tcp\r\n" : "Connection: close\r\n", length);
    if (n <= 0 || (size_t)n >= sizeof head || !hio_write_all(fd, head, (size_t)n) || (length && !hio_write_all(fd, body, length)))
        fail("cannot talk to the Docker daemon", strerror(errno));
    return fd;
}

// The whole answer to a request sent with "Connection: close": its status and body.
static int answer(int fd, buf_t *out) {
    buf_t b = {0};
    size_t at;
    int status = hio_read_head(fd, &b, &at);
    hio_rest(fd, &b, at, out);
    return status;
}

// The daemon's own words for a refusal: the "message" of its JSON answer.
static void refused(const buf_t *body, int status) {
    const char *m = strstr(body->p, "\"message\":\"");
    fputs("docker: Error response from daemon: ", stderr);
    if (!m) {
        fprintf(stderr, "HTTP %d.\n", status);
    } else {
        for (m += 11; *m && *m != '"'; m++) {
            if (*m == '\\' && m[1]) m++;  // escapes: the character itself (ccdeck makes the line inert)
            fputc(*m, stderr);
        }
        fputs(".\n", stderr);
    }
    fputs("See 'docker run --help'.\n", stderr);
    exit(125);
}

static int call(const char *method, const char *path, const char *body, size_t length, buf_t *out) {
    return answer(request(method, path, body, length, 0), out);
}

// Splits the attach stream's frames (8 bytes: stream, 0, 0, 0, big-endian size; then the
// bytes) onto stdout and stderr. Returns how much of `p` it used. A reader gone from stdout
// ends this client, as it ends the CLI: the container runs on.
static size_t demux(const unsigned char *p, size_t n) {
    size_t used = 0;
    while (n - used >= 8) {
        const unsigned char *h = p + used;
        size_t size = ((size_t)h[4] << 24) | ((size_t)h[5] << 16) | ((size_t)h[6] << 8) | h[7];
        if (n - used - 8 < size) break;
        int fd = h[0] == 2 ? 2 : 1;
        if (!hio_write_all(fd, (const char *)h + 8, size) && fd == 1) exit(141);
        used += 8 + size;
    }
    return used;
}

// Passes on the whole frames `frames` holds, keeping a partial one for the next read.
static void drain(buf_t *frames) {
    size_t used = demux((unsigned char *)frames->p, frames->n);
    memmove(frames->p, frames->p + used, frames->n - used);
    frames->n -= used;
}

int main(int argc, char **argv) {
    hio_start(argc, argv, "ccdeck-dockerrun SOCKET NAME [SECONDS] < LENGTH NEWLINE CREATE-BODY STDIN...", 125,
              (hio_client){.fail = fail, .cannot_connect = cannot_connect, .timed_out = timed_out}, name, sizeof name);
    size_t length;
    buf_t input = {0};
    char *body = hio_read_body(&length, &input, "ccdeck-dockerrun");
    char path[512];
    buf_t out = {0};

    snprintf(path, sizeof path, "/containers/create?name=%s", name);
    int status = call("POST", path, body, length, &out);
    memset(body, 0, length);  // it may hold a token
    free(body);
    if (status != 201) refused(&out, status);

    // Attached before it starts, so nothing it prints is missed.
    snprintf(path, sizeof path, "/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1", name);
    int stream = request("POST", path, "", 0, 1);
    buf_t head = {0};
    size_t at;
    status = hio_read_head(stream, &head, &at);
    if (status != 101 && status != 200) {
        out.n = 0;
        hio_rest(stream, &head, at, &out);
        refused(&out, status);
    }

    // Its exit is waited for from before it starts (as the CLI does): a wait asked after the
    // end could find it already removed. The head comes once the daemon has the waiter.
    snprintf(path, sizeof path, "/containers/%s/wait?condition=next-exit", name);
    int waiter = request("POST", path, "", 0, 0);
    buf_t waited = {0};
    size_t waited_at;
    status = hio_read_head(waiter, &waited, &waited_at);
    if (status != 200) {
        out.n = 0;
        hio_rest(waiter, &waited, waited_at, &out);
        refused(&out, status);
    }

    hio_answer_within(waiter, 0);  // its exit may be hours away

    out.n = 0;
    status = call("POST", (snprintf(path, sizeof path, "/containers/%s/start", name), path), "", 0, &out);
    if (status != 204 && status != 304) refused(&out, status);
    hio_answer_within(stream, 0);

    // Pump: stdin to the container, its frames out, until its output ends.
    buf_t frames = {0};
    hio_append(&frames, head.p + at, head.n - at);
    drain(&frames);
    size_t sent = 0;
    int stdin_open = 1;
    char chunk[65536];
    for (;;) {
        // stdin is read only while nothing waits to go: a slow container reader holds it back.
        struct pollfd fds[2] = {{.fd = stream, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
        if (sent < input.n) fds[0].events |= POLLOUT;
        else if (stdin_open) fds[1].fd = 0;
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            fail("ccdeck-dockerrun", strerror(errno));
        }
        if (fds[0].revents & POLLOUT) {
            ssize_t r = send(stream, input.p + sent, input.n - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (r > 0) sent += (size_t)r;
            else if (r < 0 && errno != EAGAIN && errno != EINTR) { sent = input.n; stdin_open = 0; }
            if (sent == input.n && !stdin_open) shutdown(stream, SHUT_WR);
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(0, chunk, sizeof chunk);
            if (r > 0) {
                if (sent == input.n) sent = input.n = 0;
                hio_append(&input, chunk, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                stdin_open = 0;
                if (sent == input.n) shutdown(stream, SHUT_WR);  // the container's stdin ends
            }
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(stream, chunk, sizeof chunk);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            hio_append(&frames, chunk, (size_t)r);
            drain(&frames);
        }
    }
    close(stream);

    // Its output has ended: it has stopped, or is about to.
    out.n = 0;
    hio_rest(waiter, &waited, waited_at, &out);
    const char *code = strstr(out.p, "\"StatusCode\":");
    if (!code) fail("the Docker daemon's answer", "no StatusCode");
    return (int)(strtol(code + 13, NULL, 10) & 0xFF);
}
