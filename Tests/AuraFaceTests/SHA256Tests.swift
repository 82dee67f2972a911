import AuraFace
import Foundation
import Testing

/// Test vectors from FIPS 180-4's examples (NIST CSRC "SHA256.pdf") and the NESSIE set.
@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
    ])
    func knownVectorsMatch(message: String, digest: String) {
        #expect(SHA256.hexDigest(of: Array(message.utf8)) == digest)
    }

    @Test func millionAsMatch() {
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(
            SHA256.hexDigest(of: message)
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func splitUpdatesMatchOneUpdate() {
        let message = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let whole = SHA256.hexDigest(of: message)
        for split in [1, 55, 56, 63, 64, 65, 128, 999] {
            var hasher = SHA256()
            message.withUnsafeBytes { bytes in
                hasher.update(UnsafeRawBufferPointer(rebasing: bytes[0..<split]))
                hasher.update(UnsafeRawBufferPointer(rebasing: bytes[split...]))
            }
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            #expect(digest == whole, "split at \(split)")
        }
    }
}
