//! Replays the `cargo fuzz` corpus of the webhook's parsers (`fuzz/corpus/webhook_request/`)
//! through the same entry point the fuzz target calls, so CI needs no nightly toolchain.

#[path = "../../fuzz/src/entry.rs"]
mod entry;

#[test]
fn every_fuzz_corpus_input_is_answered_with_a_4xx_and_changes_nothing() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/webhook_request");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading the corpus {}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "the corpus holds its seeds: {}",
        files.len()
    );
    let mut statuses = std::collections::BTreeMap::new();
    for f in &files {
        let data = std::fs::read(f).expect("a readable corpus file");
        let status = std::panic::catch_unwind(|| entry::exercise(&data))
            .unwrap_or_else(|_| panic!("corpus input {} failed", f.display()));
        *statuses.entry(status).or_insert(0u32) += 1;
    }
    println!(
        "fuzz corpus replayed: {} inputs, statuses {statuses:?}",
        files.len()
    );
}
