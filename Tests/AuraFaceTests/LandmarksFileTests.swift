// LandmarksFile: the JSON and text layouts, path resolution, and the errors that name the line.

import Foundation
import Testing

@testable import AuraFace

private let base = URL(fileURLWithPath: "/data/set")

private let expectedPoints = [
    Point2D(x: 1, y: 2), Point2D(x: 3, y: 4), Point2D(x: 5, y: 6), Point2D(x: 7, y: 8),
    Point2D(x: 9, y: 10.5),
]

private func parse(_ text: String) throws(LandmarksFileError) -> LandmarksFile {
    try LandmarksFile(text: text, path: "marks", baseDirectory: base)
}

/// Parses `text`, expecting it to fail, and returns the error.
private func parseError(_ text: String) -> LandmarksFileError? {
    do {
        _ = try parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite("Landmarks file")
struct LandmarksFileTests {
    @Test("layouts give the same entries", arguments: [
        #"{"b.jpg": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10.5], "a.jpg": [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10.5]]}"#,
        #"[{"image": "a.jpg", "landmarks": [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10.5]]}, {"file": "b.jpg", "kps": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10.5]}]"#,
        "{\"image\": \"a.jpg\", \"kps\": [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10.5]]}\n\n"
            + "{\"path\": \"b.jpg\", \"landmarks\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10.5]}\n",
        "# detector output\na.jpg 1 2 3 4 5 6 7 8 9 10.5\n\nb.jpg\t1 2 3 4 5 6 7 8 9 10.5",
        "image,x1,y1,x2,y2,x3,y3,x4,y4,x5,y5\na.jpg, 1,2,3,4,5,6,7,8,9,10.5\r\nb.jpg,1,2,3,4,5,6,7,8,9,10.5\n",
    ])
    func layoutsGiveSameEntries(_ text: String) throws {
        let file = try parse(text)

        #expect(file.entries.map(\.image) == ["a.jpg", "b.jpg"])
        #expect(file.entries.map(\.url.path) == ["/data/set/a.jpg", "/data/set/b.jpg"])
        for entry in file.entries {
            #expect(entry.landmarks.points == expectedPoints, "\(entry.image)")
        }
    }

    @Test func commaLayoutAllowsSpacesInPaths() throws {
        let file = try parse("my photos/a b.jpg,1,2,3,4,5,6,7,8,9,10.5\n")

        #expect(file.entries.map(\.image) == ["my photos/a b.jpg"])
        #expect(file.landmarks(for: URL(fileURLWithPath: "/data/set/my photos/a b.jpg")) != nil)
    }

    @Test func lookupResolvesRelativeAndAbsolutePaths() throws {
        let file = try parse("sub/../a.jpg 1 2 3 4 5 6 7 8 9 10.5\n/elsewhere/b.png 1 2 3 4 5 6 7 8 9 10.5\n")

        #expect(file.landmarks(for: URL(fileURLWithPath: "/data/set/a.jpg"))?.points == expectedPoints)
        #expect(file.landmarks(for: URL(fileURLWithPath: "/data/set/./x/../a.jpg")) != nil)
        #expect(file.landmarks(for: URL(fileURLWithPath: "/elsewhere/b.png")) != nil)
        #expect(file.landmarks(for: URL(fileURLWithPath: "/data/set/b.png")) == nil)
    }

    @Test func readsFileRelativeToItsFolder() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "auraface-landmarks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("marks.txt")
        try "face.png 1 2 3 4 5 6 7 8 9 10.5\n".write(to: url, atomically: true, encoding: .utf8)

        let file = try LandmarksFile(contentsOf: url)

        #expect(file.path == url.path)
        #expect(file.entries.first?.url.path == directory.appendingPathComponent("face.png").standardizedFileURL.path)
    }

    @Test func wrongCountNamesLine() {
        let error = parseError("a.jpg 1 2 3 4 5 6 7 8 9 10\nb.jpg 1 2 3 4 5 6 7 8 9\n")

        #expect(error == .wrongValueCount(path: "marks", location: .line(2), found: 9))
        #expect(error?.description == "landmarks file 'marks' line 2: expected 10 numbers x1 y1 ... x5 y5, found 9")
    }

    @Test func jsonPairsWithWrongCountAreRejected() {
        let error = parseError(#"{"a.jpg": [[1, 2], [3, 4], [5, 6], [7, 8]]}"#)

        #expect(error == .wrongValueCount(path: "marks", location: .key("a.jpg"), found: 8))
    }

    @Test func nonFiniteValuesAreRejected() {
        let nan = parseError("a.jpg 1 2 3 nan 5 6 7 8 9 10\n")
        let infinity = parseError("a.jpg,1,2,3,4,5,6,7,8,9,inf\n")

        #expect(nan == .nonFiniteValue(path: "marks", location: .line(1), index: 3, value: .nan) || isNaNError(nan))
        #expect(infinity == .nonFiniteValue(path: "marks", location: .line(1), index: 9, value: .infinity))
        #expect(infinity?.description == "landmarks file 'marks' line 1: y5 is inf, expected a finite number")
    }

    /// NaN never equals itself, so the NaN case is compared field by field.
    private func isNaNError(_ error: LandmarksFileError?) -> Bool {
        guard case let .nonFiniteValue(path, location, index, value) = error else { return false }
        return path == "marks" && location == .line(1) && index == 3 && value.isNaN
    }

    @Test func duplicateImageNamesBothPlaces() {
        let error = parseError("a.jpg 1 2 3 4 5 6 7 8 9 10\n./a.jpg 1 2 3 4 5 6 7 8 9 10\n")

        #expect(error == .duplicateImage(path: "marks", location: .line(2), image: "./a.jpg", firstLocation: .line(1)))
        #expect(error?.description == "landmarks file 'marks' line 2: image './a.jpg' already has landmarks at line 1")
    }

    @Test func recordWithoutImageIsRejected() {
        let noField = parseError("{\"image\": \"a.jpg\", \"kps\": [1,2,3,4,5,6,7,8,9,10]}\n{\"kps\": [1,2,3,4,5,6,7,8,9,10], \"id\": 3}\n")
        let empty = parseError(#"[{"image": "", "landmarks": [1,2,3,4,5,6,7,8,9,10]}]"#)

        #expect(noField == .missingImage(path: "marks", location: .line(2)))
        #expect(empty == .missingImage(path: "marks", location: .element(0)))
    }

    @Test func invalidValuesAreRejected() {
        let word = parseError("a.jpg 1 2 3 4 five 6 7 8 9 10\n")
        let boolean = parseError(#"[{"image": "a.jpg", "landmarks": [true,2,3,4,5,6,7,8,9,10]}]"#)
        let badJSONLine = parseError("{\"image\": \"a.jpg\", \"kps\": [1,2,3,4,5,6,7,8,9,10]}\n{\"image\": \"b.jpg\", \"kps\": [1,2,\n")
        let triple = parseError(#"{"a.jpg": [[1, 2, 3], [3, 4], [5, 6], [7, 8], [9, 10]]}"#)

        #expect(word == .invalidNumber(path: "marks", location: .line(1), text: "five"))
        guard case let .invalidNumber(_, location, _) = boolean else {
            Issue.record("expected invalidNumber, found \(String(describing: boolean))")
            return
        }
        #expect(location == .element(0))
        guard case let .invalidJSON(_, line, _) = badJSONLine else {
            Issue.record("expected invalidJSON, found \(String(describing: badJSONLine))")
            return
        }
        #expect(line == 2)
        guard case let .invalidRecord(_, location, reason) = triple else {
            Issue.record("expected invalidRecord, found \(String(describing: triple))")
            return
        }
        #expect(location == .key("a.jpg"))
        #expect(reason.contains("found 3 values"))
    }

    @Test func missingFileIsUnreadable() {
        let url = URL(fileURLWithPath: "/nonexistent/marks.json")
        #expect(throws: LandmarksFileError.self) {
            _ = try LandmarksFile(contentsOf: url)
        }
    }
}
