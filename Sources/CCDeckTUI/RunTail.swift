import CCDeckCore

/// The last lines of a run's rendered output, bounded in lines (and, through the renderer,
/// in bytes per line). The full output stays on disk.
public struct RunTail: Sendable {
    public let capacity: Int
    private var storage: [RenderedLine] = []
    private var start = 0
    /// Every line ever appended, including those dropped from memory.
    public private(set) var totalAppended = 0

    /// Nothing is reserved until a line arrives: a dashboard holds thousands of finished runs
    /// whose tails stay empty (their output is read from disk when shown).
    public init(capacity: Int = 1_000) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { storage.count }

    public mutating func append(_ line: RenderedLine) {
        totalAppended += 1
        if storage.isEmpty { storage.reserveCapacity(min(capacity, 256)) }
        if storage.count < capacity {
            storage.append(line)
        } else {
            storage[start] = line
            start = (start + 1) % capacity
        }
    }

    public mutating func append(contentsOf lines: [RenderedLine]) {
        for l in lines { append(l) }
    }

    /// The newest `n` lines, oldest first.
    public func last(_ n: Int) -> [RenderedLine] {
        let k = min(n, storage.count)
        return (0..<k).map { storage[(start + storage.count - k + $0) % storage.count] }
    }
}

/// The raw stream-json lines of a run, read from disk on demand: scrollback over the whole
/// output without holding it in memory.
public protocol OutputSource: AnyObject {
    func lineCount(run id: String) -> Int
    func line(run id: String, at index: Int) -> String?
    /// At most `maxBytes` of a line, and how much was left out. The default reads the whole line
    /// first; a source that can read part of a line (the store) should, so a 60 MB line costs 64 KiB.
    func line(run id: String, at index: Int, maxBytes: Int) -> StoredLine?
}

extension OutputSource {
    public func line(run id: String, at index: Int, maxBytes: Int) -> StoredLine? {
        line(run: id, at: index).map { StoredLine($0, maxBytes: maxBytes) }
    }
}

/// Rendered stored lines by run, line and wrap width. Drawing and scrolling ask for the same few
/// lines again and again, and a stored line never changes once complete.
final class RenderedLineCache {
    struct Key: Hashable {
        let run: String
        let raw: Int
        let width: Int
    }

    let capacity: Int
    private var lines: [Key: [RenderedLine]] = [:]

    init(capacity: Int = 512) { self.capacity = capacity }

    func lines(_ key: Key, _ make: () -> [RenderedLine]) -> [RenderedLine] {
        if let hit = lines[key] { return hit }
        let made = make()
        // Dropping everything is crude but cheap; the window refills it with the lines it shows.
        if lines.count >= capacity { lines.removeAll(keepingCapacity: true) }
        lines[key] = made
        return made
    }
}

/// Where the output window is: following the end, or anchored with its top at a rendered
/// line (`sub`) of a raw line (`raw`).
public enum OutputPosition: Sendable, Equatable {
    case follow
    case anchored(raw: Int, sub: Int)
}

/// Renders raw lines and walks rendered lines forwards and backwards from an anchor.
struct OutputCursor {
    let source: OutputSource
    let run: String
    let renderer: EventRenderer
    /// Rendered lines wider than this become several rows (0: no wrapping).
    let wrapWidth: Int
    let cache: RenderedLineCache?
    private let parser = StreamEventParser()
    /// Only this much of one stored line is read, parsed and drawn: a 60 MB line costs what a normal one does.
    static let maxLineBytes = EventRenderer.maxStoredLineBytes

    init(source: OutputSource, run: String, renderer: EventRenderer, wrapWidth: Int, cache: RenderedLineCache? = nil) {
        self.source = source
        self.run = run
        self.renderer = renderer
        self.wrapWidth = wrapWidth
        self.cache = cache
    }

    func rendered(_ raw: Int) -> [RenderedLine] {
        guard let cache else { return render(raw) }
        return cache.lines(RenderedLineCache.Key(run: run, raw: raw, width: wrapWidth)) { render(raw) }
    }

    private func render(_ raw: Int) -> [RenderedLine] {
        guard let line = source.line(run: run, at: raw, maxBytes: Self.maxLineBytes) else { return [] }
        return Self.wrap(renderer.render(stored: line.text, omittedBytes: line.omittedBytes, parser: parser), wrapWidth)
    }

    static func wrap(_ lines: [RenderedLine], _ width: Int) -> [RenderedLine] {
        guard width > 0 else { return lines }
        return lines.flatMap { l in Screen.wrap(l.text, width).map { RenderedLine(kind: l.kind, text: $0) } }
    }

    var count: Int { source.lineCount(run: run) }

    /// Up to `n` rendered lines starting at the anchor.
    func window(from anchor: (raw: Int, sub: Int), _ n: Int) -> [RenderedLine] {
        var out: [RenderedLine] = []
        var raw = max(0, anchor.raw), sub = max(0, anchor.sub)
        let total = count
        while out.count < n && raw < total {
            let lines = rendered(raw)
            if sub < lines.count { out += lines[sub...].prefix(n - out.count) }
            raw += 1
            sub = 0
        }
        return out
    }

    /// The anchor whose window of `n` lines ends at the last line.
    func bottomAnchor(_ n: Int) -> (raw: Int, sub: Int) {
        move(from: (count, 0), by: -n)
    }

    /// Moves the anchor by `delta` rendered lines (negative: up), clamped to the output.
    func move(from anchor: (raw: Int, sub: Int), by delta: Int) -> (raw: Int, sub: Int) {
        var raw = anchor.raw, sub = anchor.sub
        if delta < 0 {
            var left = -delta
            while left > 0 {
                if sub >= left { return (raw, sub - left) }
                left -= sub
                raw -= 1
                if raw < 0 { return (0, 0) }
                sub = rendered(raw).count
            }
            return (raw, sub)
        }
        var left = delta
        let total = count
        while left > 0 && raw < total {
            let c = rendered(raw).count
            if sub + left < c { return (raw, sub + left) }
            left -= c - sub
            raw += 1
            sub = 0
        }
        return (min(raw, total), 0)
    }

    /// True when a window of `n` lines from the anchor reaches the last line.
    func reachesEnd(from anchor: (raw: Int, sub: Int), _ n: Int) -> Bool {
        let end = move(from: anchor, by: n)
        return end.raw >= count
    }
}
