import CCDeckCore
import CNCurses
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum TerminalError: Error, CustomStringConvertible, Equatable {
    case notATerminal
    case initFailed(String)
    /// TERM names no terminal the dashboard can drive: why, in ccdeck's words (see `unusable`).
    case unusableTerminal(String)

    public var description: String {
        switch self {
        case .notATerminal: return "the dashboard needs a terminal on stdin and stdout"
        case .initFailed(let why): return "cannot start the terminal: \(why)"
        case .unusableTerminal(let why): return why
        }
    }

    /// What to say for a `ccdeck_terminal_check` answer other than 0, naming TERM as set.
    public static func unusable(term: String?, check: Int32) -> TerminalError {
        let name = "TERM=" + InertText.line((term ?? "").prefix(60))
        let instead = "run it in a terminal like xterm, or use `ccdeck runs ls`"
        switch check {
        case 1:
            return .unusableTerminal("TERM is \(term == nil ? "not set" : "empty"), so the dashboard cannot know what this "
                                     + "terminal can do: set it (e.g. TERM=xterm-256color), or use `ccdeck runs ls`")
        case 3:
            return .unusableTerminal("no terminfo database was found to look up \(name): install one (e.g. the "
                                     + "ncurses-base package), or use `ccdeck runs ls`")
        case 4: return .unusableTerminal("\(name) is a hardcopy terminal: \(instead)")
        case 5: return .unusableTerminal("\(name) cannot address the cursor: \(instead)")
        case 6: return .unusableTerminal("\(name) cannot clear the screen: \(instead)")
        default:
            return .unusableTerminal("\(name) is not a terminal type this system knows (no terminfo entry): set TERM "
                                     + "to one it knows, like xterm-256color, or use `ccdeck runs ls`")
        }
    }
}

/// The only code that calls ncurses, from the one UI thread. It copies the rows of the
/// screen model that changed since the last frame, and gives the terminal back exactly as
/// it found it on every exit path.
public final class NCursesTerminal {
    public let utf8: Bool
    public let color: Bool
    private var last: Screen?
    private var attrCache: [TextStyle: attr_t] = [:]
    private var input = InputDecoder()

    /// Asks the terminal to mark pastes (`ESC [200~ … ESC [201~`), so pasted text is never taken for keys.
    static let bracketedPasteOn: StaticString = "\u{1B}[?2004h"
    static let bracketedPasteOff: StaticString = "\u{1B}[?2004l"

    nonisolated(unsafe) static var savedTermios = termios()
    nonisolated(unsafe) static var hasSavedTermios = false
    nonisolated(unsafe) static var active = false

    public init(colorWanted: Bool) throws {
        guard isatty(0) == 1, isatty(1) == 1 else { throw TerminalError.notATerminal }
        // Before ncurses starts: on a TERM it cannot use, it would print its own message and exit 1,
        // and on one without cursor addressing (dumb) it would draw every frame on one line.
        let check = ccdeck_terminal_check()
        guard check == 0 else {
            throw TerminalError.unusable(term: ProcessInfo.processInfo.environment["TERM"], check: check)
        }
        if tcgetattr(0, &Self.savedTermios) == 0 { Self.hasSavedTermios = true }
        Self.installCrashHandlers()
        utf8 = ccdeck_setlocale_utf8() != 0
        // ESC alone must not wait a second for a sequence that never comes.
        setenv("ESCDELAY", "25", 0)
        guard ccdeck_newterm() != 0 else { throw TerminalError.initFailed("ncurses could not start on this terminal") }
        Self.active = true
        Self.emit(Self.bracketedPasteOn)
        cbreak()
        noecho()
        nonl()
        keypad(ccdeck_stdscr(), true)
        nodelay(ccdeck_stdscr(), true)
        intrflush(ccdeck_stdscr(), false)
        curs_set(0)
        var colorOn = false
        if colorWanted && has_colors() {
            start_color()
            use_default_colors()
            colorOn = true
            // Foregrounds only, on the terminal's own background (-1).
            let pairs: [(ColorRole, Int16)] = [(.accent, Int16(COLOR_CYAN)), (.good, Int16(COLOR_GREEN)),
                                                (.warn, Int16(COLOR_YELLOW)), (.bad, Int16(COLOR_RED)),
                                                (.focus, Int16(COLOR_CYAN))]
            for (role, fg) in pairs { init_pair(Int16(role.rawValue), fg, -1) }
        }
        color = colorOn
    }

    public var size: (width: Int, height: Int) { (Int(ccdeck_cols()), Int(ccdeck_lines())) }

    /// Re-reads the window size after SIGWINCH and tells ncurses.
    public func resize() -> (width: Int, height: Int) {
        var ws = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0, ws.ws_row > 0 {
            resizeterm(Int32(ws.ws_row), Int32(ws.ws_col))
        }
        last = nil
        return size
    }

    /// Writes the rows that changed since the last frame; nothing at all when none did.
    public func draw(_ screen: Screen, force: Bool = false) {
        if force { last = nil; clearok(ccdeck_stdscr(), true) }
        let rows = screen.changedRows(since: last)
        guard !rows.isEmpty else { return }
        let win = ccdeck_stdscr()
        for y in rows {
            wmove(win, Int32(y), 0)
            var x = 0
            while x < screen.width {
                let style = screen[x, y].style
                var text = ""
                while x < screen.width && screen[x, y].style == style {
                    text += utf8 ? screen[x, y].text : Self.ascii(screen[x, y].text)
                    x += 1
                }
                wattrset(win, Int32(bitPattern: attributes(style)))
                waddstr(win, text)
            }
        }
        wattrset(win, 0)
        wnoutrefresh(win)
        doupdate()
        last = screen
    }

    static let asciiStandIns: [String: String] = ["·": "-", "×": "x", "−": "-", "–": "-", "—": "-", "…": "~", "⏎": "|", "▏": "|"]

    private static func ascii(_ s: String) -> String {
        if s.isEmpty { return "" }
        if s.unicodeScalars.allSatisfy({ $0.isASCII }) { return s }
        // ccdeck's own punctuation has a plain stand-in; anything else shows as `?`.
        if let plain = asciiStandIns[s] { return plain }
        return DisplayWidth.of(s) == 2 ? "??" : "?"
    }

    private func attributes(_ style: TextStyle) -> attr_t {
        if let a = attrCache[style] { return a }
        var a = ccdeck_a_normal()
        if style.bold { a |= ccdeck_a_bold() }
        if style.reverse { a |= ccdeck_a_reverse() }
        if style.underline { a |= ccdeck_a_underline() }
        if style.dim || style.color == .muted { a |= ccdeck_a_dim() }
        if color, style.color != .normal, style.color != .muted { a |= ccdeck_color_pair(Int32(style.color.rawValue)) }
        attrCache[style] = a
        return a
    }

    /// Every key waiting on stdin (non-blocking); a paste still arriving is kept for the next call.
    public func readKeys() -> [Key] {
        var keys: [Key] = []
        var ch: wint_t = 0
        while true {
            let rc = wget_wch(ccdeck_stdscr(), &ch)
            if rc == ERR { break }
            if rc == KEY_CODE_YES {
                if input.inPaste, let sequence = Self.sequence(of: Int32(ch)) {
                    // ncurses decoded an escape sequence inside a paste: it is pasted text, handed over as such.
                    for scalar in sequence.unicodeScalars { keys += input.feed(.scalar(scalar.value)) }
                } else if let k = Self.functionKey(Int32(ch)) {
                    keys += input.feed(.key(k))
                }
            } else {
                keys += input.feed(.scalar(UInt32(ch)))
            }
        }
        return keys + input.flush()
    }

    /// The bytes the terminal sends for a key code, from terminfo.
    static func sequence(of code: Int32) -> String? {
        guard let bytes = keybound(code, 0) else { return nil }
        defer { free(bytes) }
        return String(cString: bytes)
    }

    static func functionKey(_ code: Int32) -> Key? {
        switch code {
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_BTAB: return .backTab
        case KEY_ENTER: return .enter
        case KEY_BACKSPACE: return .backspace
        case KEY_DC: return .delete
        case KEY_F0 + 1...KEY_F0 + 12: return .function(Int(code - KEY_F0))
        default: return nil
        }
    }

    static func characterKey(_ v: UInt32) -> Key? { Key.character(v) }

    /// Hands the terminal to a child (attach), then takes it back: saved modes restored,
    /// input typed meanwhile and terminal replies dropped, everything redrawn. The child gets
    /// the terminal without bracketed paste, as a shell expects it.
    public func suspend(_ body: () -> Void) {
        def_prog_mode()
        endwin()
        Self.emit(Self.bracketedPasteOff)
        body()
        reset_prog_mode()
        Self.emit(Self.bracketedPasteOn)
        flushinp()
        input = InputDecoder()  // a paste half-read before the child ran is not finished after it
        last = nil
        clearok(ccdeck_stdscr(), true)
    }

    /// The terminal's bell.
    public func bell() {
        guard Self.active else { return }
        beep()
    }

    /// Sets the window's title (saving the one it had first, given back by `restore`). Only
    /// ccdeck's own words reach it, as printable ASCII; unchanged titles are not written again.
    public func setTitle(_ title: String) {
        guard Self.active, title != lastTitle else { return }
        if lastTitle == nil { Self.emit(Self.pushTitle) }
        lastTitle = title
        let clean = String(title.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F }.map(Character.init))
        let bytes = Array("\u{1B}]0;\(clean.prefix(80))\u{07}".utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
        Self.titleSet = true
    }

    private var lastTitle: String?
    nonisolated(unsafe) static var titleSet = false
    static let pushTitle: StaticString = "\u{1B}[22;0t"
    static let popTitle: StaticString = "\u{1B}[23;0t"

    private static func emit(_ s: StaticString) {
        _ = Glibc.write(1, s.utf8Start, s.utf8CodeUnitCount)
    }

    /// Ctrl-Z: give the terminal back, stop, and on `fg` take it again.
    public func stopForJobControl() {
        suspend {
            signal(SIGTSTP, SIG_DFL)
            raise(SIGTSTP)
        }
    }

    /// Ends ncurses and restores the saved terminal modes. Safe to call twice.
    public func restore() {
        guard Self.active else { return }
        Self.active = false
        curs_set(1)
        endwin()
        Self.emit(Self.bracketedPasteOff)
        if Self.titleSet { Self.emit(Self.popTitle) }  // the title the window had before
        if Self.hasSavedTermios { tcsetattr(0, TCSANOW, &Self.savedTermios) }
    }

    /// A crash in ccdeck's own code still gives the terminal back before the process dies. The
    /// handler runs on its own stack, so a stack overflow (SIGSEGV with no stack left) reaches it too.
    static func installCrashHandlers() {
        if !alternateStackInstalled {
            let size = 64 * 1024
            var stack = stack_t()
            stack.ss_sp = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)  // lives as long as the process
            stack.ss_size = size
            stack.ss_flags = 0
            if sigaltstack(&stack, nil) == 0 { alternateStackInstalled = true }
        }
        for sig in [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                if NCursesTerminal.hasSavedTermios { tcsetattr(0, TCSANOW, &NCursesTerminal.savedTermios) }
                // Leave the alternate screen, show the cursor, reset attributes, end bracketed paste.
                let reset: StaticString = "\u{1B}[0m\u{1B}[?25h\u{1B}[?2004l\u{1B}[?1049l\r\n"
                _ = write(1, reset.utf8Start, reset.utf8CodeUnitCount)
                signal(sig, SIG_DFL)
                raise(sig)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_ONSTACK
            sigaction(sig, &action, nil)
        }
    }

    nonisolated(unsafe) private static var alternateStackInstalled = false
}
