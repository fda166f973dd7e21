import CCDeckCore
import Testing

@Suite struct DurationTextTests {
    @Test(arguments: [("90", 90.0), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1.5h", 5400), ("2d", 172_800), (" 10M ", 600),
                      ("1w", 604_800), ("0.5s", 0.5)])
    func parses(text: String, seconds: Double) {
        #expect(DurationText.parse(text) == seconds)
    }

    @Test(arguments: ["", "0", "-5m", "5x", "m", "5m3", "1e400", "nan", "inf", "5 m", "١٢s", String(repeating: "9", count: 40) + "s",
                      "99999999999h"])
    func refuses(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test func formats() {
        #expect(DurationText.format(45) == "45s")
        #expect(DurationText.format(300) == "5m")
        #expect(DurationText.format(330) == "5m30s")
        #expect(DurationText.format(5400) == "1h30m")
        #expect(DurationText.format(7200) == "2h")
        #expect(DurationText.format(183_600) == "2d3h")
    }
}
