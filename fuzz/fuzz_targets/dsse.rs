//! DSSE envelopes (cosign attestation layers). A parsed envelope verified
//! against no signers must be refused, never accepted and never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::dsse::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::parse(data) {
        assert_eq!(envelope.payload_type(), portcullis::dsse::IN_TOTO_PAYLOAD_TYPE);
        assert!(!envelope.signatures().is_empty());
        let _ = envelope.pae();
        let _ = envelope.payload_unverified();
        assert!(
            envelope.verify(&[]).is_err(),
            "an envelope verified with no signers"
        );
    }
});
