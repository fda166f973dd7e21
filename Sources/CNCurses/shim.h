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
#include <ncursesw/curses.h>

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

#endif
