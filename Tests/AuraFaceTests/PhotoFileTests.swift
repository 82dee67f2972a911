import AuraFace
import Testing

@Suite struct PhotoFileTests {
    @Test func emptyFileIsNamedEmpty() {
        do {
            _ = try PhotoFile.decode([], path: "empty.jpg")
            Issue.record("expected an error for an empty file")
        } catch {
            #expect(error as? PhotoFileError == .unsupportedFormat(path: "empty.jpg", leadingBytes: []))
            #expect("\(error)" == "'empty.jpg' is empty, expected a PNG, JPEG, PPM (P6) or PGM (P5) file")
        }
    }

    @Test func bmpIsRejectedWithLeadingBytes() {
        do {
            _ = try PhotoFile.decode([0x42, 0x4D, 0x36, 0x00, 0x01], path: "face.bmp")
            Issue.record("expected an error for a BMP file")
        } catch {
            #expect("\(error)".contains("'face.bmp' is not a PNG, JPEG, PPM (P6) or PGM (P5) file"))
            #expect("\(error)".contains("(leading bytes 42 4d 36 00)"))
        }
    }
}
