//! CIFAR readers on the real shared data and on generated malformed files.

mod common;

use data::cifar::{CIFAR10_TRAIN_FILES, Cifar, Part, RecordLimit};
use data::{DataError, IMAGE_BYTES, SplitConfig, load_splits};

/// Class counts of data_batch_1 published in shared/data/README.md (official order).
const BATCH1_COUNTS: [usize; 10] = [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981];

#[test]
fn cifar10_batch1_counts_match_readme_and_bytes_match_file() {
    let dir = common::cifar10_dir();
    let set = Cifar::Ten.read(&dir, Part::Train, RecordLimit::Total(10_000)).unwrap();
    assert_eq!(set.len(), 10_000);
    assert_eq!(set.pixels.len(), 10_000 * IMAGE_BYTES);
    assert_eq!(set.class_counts(), BATCH1_COUNTS);
    assert_eq!(
        set.class_names,
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    );
    // Record 1234 byte-for-byte against the raw file.
    let raw = std::fs::read(dir.join("data_batch_1.bin")).unwrap();
    let r = 1234 * 3073;
    assert_eq!(set.labels[1234], raw[r]);
    assert_eq!(set.image(1234), &raw[r + 1..r + 3073]);
}

#[test]
fn per_file_limit_reads_first_records_of_each_file_in_order() {
    let dir = common::cifar10_dir();
    let set = Cifar::Ten.read(&dir, Part::Train, RecordLimit::PerFile(3)).unwrap();
    assert_eq!(set.len(), 15);
    for (f, name) in CIFAR10_TRAIN_FILES.iter().enumerate() {
        let raw = std::fs::read(dir.join(name)).unwrap();
        for r in 0..3 {
            let i = f * 3 + r;
            assert_eq!(set.labels[i], raw[r * 3073], "{name} record {r}");
            assert_eq!(set.image(i), &raw[r * 3073 + 1..(r + 1) * 3073]);
        }
    }
}

#[test]
fn cifar10_full_counts_are_5000_and_1000_per_class() {
    let dir = common::cifar10_dir();
    assert_eq!(Cifar::Ten.count_records(&dir, Part::Train).unwrap(), 50_000);
    let test = Cifar::Ten.read(&dir, Part::Test, RecordLimit::All).unwrap();
    assert_eq!(test.class_counts(), vec![1000; 10]);
}

#[test]
fn cifar100_sample_fine_labels_match_provenance() {
    let dir = common::cifar100_sample_dir();
    // The shared copy holds the first 20 of the 10,000 official records: a sample copy.
    let msg = Cifar::Hundred.read(&dir, Part::Test, RecordLimit::All).unwrap_err().to_string();
    assert!(msg.contains("test.bin") && msg.contains("61480 bytes") && msg.contains("30740000"), "{msg}");
    let set = Cifar::Hundred.read_sample(&dir, Part::Test, RecordLimit::All).unwrap();
    let fine = [49, 33, 72, 51, 71, 92, 15, 14, 23, 0, 71, 75, 81, 69, 40, 43, 92, 97, 70, 53];
    assert_eq!(set.labels, fine);
    assert_eq!(set.num_classes, 100);
    assert_eq!(set.class_names.len(), 100);
    assert_eq!(set.class_names[0], "apple");
    let raw = std::fs::read(dir.join("test.bin")).unwrap();
    let coarse = set.coarse_labels.as_ref().unwrap();
    for i in 0..20 {
        assert_eq!(coarse[i], raw[i * 3074]);
        assert_eq!(set.image(i), &raw[i * 3074 + 2..(i + 1) * 3074]);
    }
    // Fine class 0 ("apple") belongs to coarse class 4 ("fruit_and_vegetables").
    assert_eq!(coarse[9], 4);
}

#[test]
fn missing_file_error_names_file_directory_and_layout() {
    let dir = common::scratch("missing");
    let err = Cifar::Ten.read(&dir, Part::Test, RecordLimit::All).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::MissingFile { .. }));
    assert!(msg.contains("test_batch.bin"), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("cifar-10-batches-bin"), "{msg}");
}

#[test]
fn partial_record_error_names_file_size_and_record_size() {
    let dir = common::scratch("partial");
    std::fs::write(dir.join("test.bin"), vec![0u8; 3074 * 2 + 5]).unwrap();
    let err = Cifar::Hundred.read_sample(&dir, Part::Test, RecordLimit::All).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::PartialRecord { size: 6153, record_size: 3074, .. }), "{msg}");
    assert!(msg.contains("test.bin") && msg.contains("6153") && msg.contains("3074"), "{msg}");
}

#[test]
fn label_out_of_range_error_names_record_and_value() {
    let dir = common::scratch("badlabel");
    let mut bytes = vec![0u8; 3073 * 4];
    bytes[2 * 3073] = 10; // record 2: label 10 with 10 classes
    std::fs::write(dir.join("test_batch.bin"), &bytes).unwrap();
    let err = Cifar::Ten.read_sample(&dir, Part::Test, RecordLimit::All).unwrap_err();
    match &err {
        DataError::LabelOutOfRange { record, value, .. } => assert_eq!((*record, *value), (2, 10)),
        e => panic!("unexpected {e}"),
    }
    // Limiting the read to the first two records never sees the bad label.
    let ok = Cifar::Ten.read_sample(&dir, Part::Test, RecordLimit::Total(2)).unwrap();
    assert_eq!(ok.len(), 2);
    assert!(ok.class_names.is_empty());

    let dir = common::scratch("badcoarse");
    let mut bytes = vec![0u8; 3074];
    bytes[0] = 20; // coarse label 20 with 20 coarse classes
    std::fs::write(dir.join("test.bin"), &bytes).unwrap();
    let msg = Cifar::Hundred.read_sample(&dir, Part::Test, RecordLimit::All).unwrap_err().to_string();
    assert!(msg.contains("coarse label 20") && msg.contains("record 0"), "{msg}");
    // CIFAR-10's single label byte is "label 10", not "label label 10" (issue 23).
    assert!(err.to_string().contains("record 2: label 10 is out of range 0..10"), "{err}");
}

/// A data root whose CIFAR-10 files are hard links (or copies) of the shared ones, with one
/// file replaced by `bad`; `count_records`, `read` and the split must all refuse it.
fn root_with(name: &str, file: &str, bad: &[u8]) -> std::path::PathBuf {
    let src = common::cifar10_dir();
    let dir = common::scratch(name);
    for f in CIFAR10_TRAIN_FILES.iter().chain([&"test_batch.bin", &"batches.meta.txt"]) {
        let to = dir.join(f);
        if *f == file {
            std::fs::write(&to, bad).unwrap();
        } else if std::fs::hard_link(src.join(f), &to).is_err() {
            std::fs::copy(src.join(f), &to).unwrap();
        }
    }
    dir
}

#[test]
fn files_of_other_than_the_official_size_are_refused_naming_file_and_sizes() {
    let raw = std::fs::read(common::cifar10_dir().join("data_batch_1.bin")).unwrap();
    // Issue 23's findings: an empty batch (the split silently trained on data_batch_2), and
    // 1..3 whole records appended (records shifted across the train/val boundary).
    let mut appended = raw.clone();
    appended.extend_from_slice(&raw[..2 * 3073]);
    let cases: [(&str, Vec<u8>); 3] = [("empty", Vec::new()), ("appended", appended), ("truncated", raw[..9_999 * 3073].to_vec())];
    for (name, bytes) in cases {
        let dir = root_with(name, "data_batch_1.bin", &bytes);
        for err in [
            Cifar::Ten.count_records(&dir, Part::Train).unwrap_err(),
            Cifar::Ten.read(&dir, Part::Train, RecordLimit::Total(5)).unwrap_err(),
            load_splits(Cifar::Ten, &dir, &SplitConfig::smoke()).unwrap_err(),
        ] {
            let msg = err.to_string();
            match err {
                DataError::WrongFileSize { size, expected, records, .. } => {
                    assert_eq!((size, expected, records), (bytes.len() as u64, 30_730_000, 10_000), "{name}: {msg}")
                }
                e => panic!("{name}: unexpected {e}"),
            }
            assert!(msg.contains("data_batch_1.bin") && msg.contains(&format!("size {} bytes", bytes.len())) && msg.contains("30730000"), "{msg}");
        }
    }
    // The test file too, though only the first records are asked for.
    let dir = root_with("test-truncated", "test_batch.bin", &raw[..3073 * 10]);
    let msg = Cifar::Ten.read(&dir, Part::Test, RecordLimit::Total(2)).unwrap_err().to_string();
    assert!(msg.contains("test_batch.bin") && msg.contains("30730"), "{msg}");
}
