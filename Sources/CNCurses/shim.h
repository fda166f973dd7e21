// Wide-character ncurses for Swift: the macros and C globals Swift cannot import
// (or that Swift 6 rejects as shared mutable state) wrapped as inline functions.
#ifndef CCDECK_CNCURSES_SHIM_H
#define CCDECK_CNCURSES_SHIM_H

#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <locale.h>
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <ncursesw/curses.h>
#include <ncursesw/term.h>

static inline WINDOW *ccdeck_stdscr(void) { return stdscr; }
static inline int ccdeck_lines(void) { return LINES; }
static inline int ccdeck_cols(void) { return COLS; }
static inline int ccdeck_colors(void) { return COLORS; }
static inline int ccdeck_color_pairs(void) { return COLOR_PAIRS; }

static inline attr_t ccdeck_a_normal(void) { return A_NORMAL; }
static inline attr_t ccdeck_a_bold(void) { return A_BOLD; }
static inline attr_t ccdeck_a_reverse(void) { return A_REVERSE; }
static inline attr_t ccdeck_a_underline(void) { return A_UNDERLINE; }
static inline attr_t ccdeck_a_dim(void) { return A_DIM; }
static inline attr_t ccdeck_color_pair(int n) { return (attr_t)COLOR_PAIR(n); }

/// Sets the locale from the environment and reports whether its codeset is UTF-8.
static inline int ccdeck_setlocale_utf8(void) {
    setlocale(LC_ALL, "");
    const char *codeset = nl_langinfo(CODESET);
    return codeset != 0 && (codeset[0] == 'U' || codeset[0] == 'u') && (codeset[1] == 'T' || codeset[1] == 't')
        && (codeset[2] == 'F' || codeset[2] == 'f');
}

/// Asks terminfo whether the terminal named by TERM can run a full-screen program, before
/// ncurses starts (initscr prints its own message and exits on an unknown TERM). 0: it can;
/// 1: TERM unset or empty; 2: no terminfo entry for it; 3: no terminfo database; 4: a hardcopy
/// terminal; 5: it cannot address the cursor (no `cup`); 6: it cannot clear the screen.
static inline int ccdeck_terminal_check(void) {
    const char *name = getenv("TERM");
    if (name == NULL || name[0] == '\0') return 1;
    int err = 0;
    if (setupterm(name, 1, &err) != OK) return err == 1 ? 4 : (err == -1 ? 3 : 2);
    const char *cup = tigetstr("cup");
    const char *clr = tigetstr("clear");
    int result = (cup == NULL || cup == (char *)-1) ? 5 : ((clr == NULL || clr == (char *)-1) ? 6 : 0);
    del_curterm(cur_term);  /* newterm reads the entry again */
    return result;
}

/// Starts ncurses on stdin/stdout; unlike initscr, a failure returns 0 instead of exiting.
static inline int ccdeck_newterm(void) {
    return newterm(NULL, stdout, stdin) != NULL;
}

#endif
