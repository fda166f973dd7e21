// SQLite 3 from Debian's libsqlite3-dev, for the run index (CCDeckBackends/Store/RunIndex.swift).
#ifndef CCDECK_CSQLITE_SHIM_H
#define CCDECK_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro Swift cannot import: sqlite copies the bound bytes at once.
static inline sqlite3_destructor_type ccdeck_sqlite_transient(void) { return SQLITE_TRANSIENT; }
#endif
