//! cosign simple-signing payloads (a signature image's layer blob) and the
//! base64 signature annotation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::cosign;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = cosign::parse_payload(data) {
        // A payload that parses names a well-formed digest.
        assert!(
            portcullis::digest::sha256_hex_of(&p.manifest_digest).is_ok(),
            "parse_payload accepted a malformed digest {:?}",
            p.manifest_digest
        );
    }
    let text = String::from_utf8_lossy(data);
    let _ = cosign::decode_signature(&text);
});
