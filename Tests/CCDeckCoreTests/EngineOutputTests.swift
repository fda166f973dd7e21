import CCDeckCore
import Foundation
import Testing

/// Recorded outputs of the engines' CLIs (docker 28.2, podman 4.3), pinned so a format change fails here.
@Suite struct EngineOutputTests {
    @Test func dockerVersionWithDaemon() {
        let text = #"{"Client":{"Platform":{"Name":""},"Version":"28.2.2","ApiVersion":"1.50","Os":"linux"},"Server":{"Platform":{"Name":""},"Components":[],"Version":"26.1.5+dfsg1","ApiVersion":"1.45"}}"#
        #expect(EngineOutput.parseVersion(text) == .init(client: "28.2.2", server: "26.1.5+dfsg1"))
    }

    @Test func dockerVersionWithoutDaemon() {
        let text = #"{"Client":{"Version":"28.2.2","ApiVersion":"1.50"},"Server":null}"#
        #expect(EngineOutput.parseVersion(text) == .init(client: "28.2.2", server: nil))
    }

    @Test func podmanVersion() {
        let text = #"{"Client":{"APIVersion":"4.3.1","Version":"4.3.1","GoVersion":"go1.19.8","GitCommit":"","BuiltTime":"Thu Jan  1 00:00:00 1970","Built":0,"OsArch":"linux/amd64","Os":"linux"}}"#
        #expect(EngineOutput.parseVersion(text) == .init(client: "4.3.1", server: nil))
        #expect(EngineOutput.parseVersion("garbage") == nil)
    }

    @Test func dockerPsLines() {
        let text = """
            {"Command":"\\"claude -p --dange…\\"","CreatedAt":"2026-11-29 01:45:12 +0000 UTC","ID":"0123456789ab","Image":"cpm-runner:demo","Labels":"ccdeck.mode=docker,ccdeck.run=20261129-014512-a3f9,ccdeck.store=abc","Names":"ccdeck-20261129-014512-a3f9","State":"exited","Status":"Exited (0) 3 seconds ago"}
            {"ID":"ffff","Labels":"","Names":"other","State":"running","CreatedAt":"2026-11-29 01:00:00 +0000 UTC"}
            """
        let cs = EngineOutput.parseContainers(text)
        #expect(cs.count == 2)
        #expect(cs[0].name == "ccdeck-20261129-014512-a3f9")
        #expect(cs[0].labels["ccdeck.run"] == "20261129-014512-a3f9")
        #expect(cs[0].state == "exited")
        #expect(cs[0].createdAt == Date(timeIntervalSince1970: 1_795_916_712))
        #expect(cs[1].labels.isEmpty)
    }

    @Test func podmanPsArray() {
        let text = #"[{"AutoRemove":false,"Command":["x"],"Created":1795916712,"CreatedAt":"3 seconds ago","Id":"abcdef","Image":"localhost/cpm-runner:demo","Labels":{"ccdeck.run":"r1","ccdeck.mode":"podman"},"Names":["ccdeck-r1"],"State":"exited"}]"#
        let cs = EngineOutput.parseContainers(text)
        #expect(cs == [.init(id: "abcdef", name: "ccdeck-r1", state: "exited", labels: ["ccdeck.run": "r1", "ccdeck.mode": "podman"],
                             createdAt: Date(timeIntervalSince1970: 1_795_916_712))])
        #expect(EngineOutput.parseContainers("[]").isEmpty)
        #expect(EngineOutput.parseContainers("").isEmpty)
    }

    @Test func inspectState() {
        let text = #"[{"Id":"x","State":{"Status":"exited","Running":false,"ExitCode":1,"StartedAt":"2026-11-29T01:45:12.123456789Z","FinishedAt":"2026-11-29T01:45:15.5Z"}}]"#
        let s = EngineOutput.parseInspectState(text)
        #expect(s?.exitCode == 1)
        #expect(abs((s?.startedAt?.timeIntervalSince1970 ?? 0) - 1_795_916_712.123) < 0.001)
        #expect(abs((s?.finishedAt?.timeIntervalSince1970 ?? 0) - 1_795_916_715.5) < 0.001)
        #expect(EngineOutput.parseInspectState("[]") == nil)
    }

    @Test func podmanInspectTimesWithOffsets() {
        let d = EngineOutput.parseRFC3339("2026-11-29T01:45:12.123456789+00:00")
        #expect(abs((d?.timeIntervalSince1970 ?? 0) - 1_795_916_712.123) < 0.001)
    }
}

@Suite struct RFC3339Tests {
    @Test func formatsAndParsesBackToTheMillisecond() throws {
        let d = Date(timeIntervalSince1970: 1_795_000_000.123)
        #expect(RFC3339.format(d) == "2026-11-18T11:06:40.123Z")
        let back = try #require(RFC3339.parse("2026-11-18T11:06:40.123Z"))
        #expect(abs(back.timeIntervalSince1970 - 1_795_000_000.123) < 0.0005)
        #expect(RFC3339.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
    }

    @Test func enginesInstantsAreRead() throws {
        // Nanoseconds (kept to the millisecond), an offset, no fraction, docker's "never".
        #expect(RFC3339.parse("2026-11-18T11:06:40.123456789Z")?.timeIntervalSince1970 == 1_795_000_000.123)
        #expect(RFC3339.parse("2026-11-18T12:06:40.5+01:00")?.timeIntervalSince1970 == 1_795_000_000.5)
        #expect(RFC3339.parse("2026-11-18T11:06:40Z")?.timeIntervalSince1970 == 1_795_000_000)
        #expect(RFC3339.parse("0001-01-01T00:00:00Z") != nil)
        for bad in ["", "2026-11-17", "2026-11-18T11:06:40", "2026-13-17T09:46:40Z", "2026-11-18T11:06:40.Z", "x026-11-17T09:46:40Z",
                    "2026-11-18T11:06:40Zjunk"] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }
}
