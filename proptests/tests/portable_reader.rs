//! The XEP-0227 reader's fuzz harness on the real Prosody and ejabberd
//! exports (`server/tests/fixtures/xep0227/`), split in many ways: the same
//! records whatever the chunks, nothing panics.

use vireo_proptests::harness::portable_reader;

#[test]
fn real_exports_read_alike_however_split() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/fixtures/xep0227");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("fixture");
        for seed in 0..16u8 {
            let mut input = vec![seed];
            input.extend_from_slice(&bytes);
            portable_reader::run(&input);
        }
        files += 1;
    }
    assert!(files >= 2, "the Prosody and ejabberd fixtures");
}
