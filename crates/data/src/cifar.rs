//! Readers for the official CIFAR-10 and CIFAR-100 *binary* formats.
//!
//! CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` .. `data_batch_5.bin` and
//! `test_batch.bin`, each record = 1 label byte + 3072 pixel bytes (R plane, G, B; row-major
//! 32x32); class names in `batches.meta.txt`.
//! CIFAR-100 (`cifar-100-binary/`): `train.bin`, `test.bin`, each record = coarse byte +
//! fine byte + 3072 pixel bytes; names in `fine_label_names.txt` / `coarse_label_names.txt`.
//!
//! Files are validated (presence, size, label range) and read straight into one contiguous
//! [`ImageSet`] buffer. [`Cifar::read`] accepts only files of the official size (every
//! CIFAR-10 batch 10,000 records; CIFAR-100 50,000 and 10,000), so a truncated, emptied or
//! extended file is an error naming it, its size and the size expected, rather than records
//! silently shifting from one file (and one split) into another. [`Cifar::read_sample`] is
//! for sample copies (the 20-image CIFAR-100 test sample, hand-made fixtures): any whole
//! number of records per file.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::images::{IMAGE_BYTES, ImageSet};

/// Which of the two CIFAR data sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cifar {
    /// CIFAR-10: 10 classes, 1 label byte per record.
    Ten,
    /// CIFAR-100: 100 fine / 20 coarse classes, 2 label bytes per record.
    Hundred,
}

/// Training or test part of a CIFAR data set (as shipped, before any split).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The 50,000 training records.
    Train,
    /// The 10,000 test records.
    Test,
}

/// Which file sizes a read accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sizes {
    /// Exactly the official record count of each file.
    Official,
    /// Any whole number of records (a sample copy).
    Sample,
}

/// How many records to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordLimit {
    /// Every record of every file.
    #[default]
    All,
    /// At most this many records from the start of *each* file.
    PerFile(usize),
    /// At most this many records in total, taken in file order (files past the limit are
    /// not opened for reading, only checked for presence and size).
    Total(usize),
}

/// CIFAR-10 training files in order.
pub const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// CIFAR-10 test file.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";
/// CIFAR-10 class-name file.
pub const CIFAR10_NAMES_FILE: &str = "batches.meta.txt";
/// CIFAR-100 training file.
pub const CIFAR100_TRAIN_FILE: &str = "train.bin";
/// CIFAR-100 test file.
pub const CIFAR100_TEST_FILE: &str = "test.bin";
/// CIFAR-100 fine class-name file.
pub const CIFAR100_FINE_NAMES_FILE: &str = "fine_label_names.txt";
/// CIFAR-100 coarse class-name file.
pub const CIFAR100_COARSE_NAMES_FILE: &str = "coarse_label_names.txt";

impl Cifar {
    /// Name of the directory the official archive extracts to.
    pub fn dir_name(self) -> &'static str {
        match self {
            Cifar::Ten => "cifar-10-batches-bin",
            Cifar::Hundred => "cifar-100-binary",
        }
    }

    /// Number of label bytes before the pixels of each record.
    pub fn label_bytes(self) -> usize {
        match self {
            Cifar::Ten => 1,
            Cifar::Hundred => 2,
        }
    }

    /// Bytes per record (labels + 3072 pixels).
    pub fn record_bytes(self) -> usize {
        self.label_bytes() + IMAGE_BYTES
    }

    /// Number of (fine) classes.
    pub fn num_classes(self) -> usize {
        match self {
            Cifar::Ten => 10,
            Cifar::Hundred => 100,
        }
    }

    /// Data files of a part, in reading order.
    pub fn files(self, part: Part) -> Vec<&'static str> {
        match (self, part) {
            (Cifar::Ten, Part::Train) => CIFAR10_TRAIN_FILES.to_vec(),
            (Cifar::Ten, Part::Test) => vec![CIFAR10_TEST_FILE],
            (Cifar::Hundred, Part::Train) => vec![CIFAR100_TRAIN_FILE],
            (Cifar::Hundred, Part::Test) => vec![CIFAR100_TEST_FILE],
        }
    }

    /// Records in the official release of one data file of `part` (the same for every file
    /// of a part).
    pub fn official_records(self, part: Part) -> usize {
        match (self, part) {
            (Cifar::Ten, _) | (Cifar::Hundred, Part::Test) => 10_000,
            (Cifar::Hundred, Part::Train) => 50_000,
        }
    }

    /// Human-readable expected layout, used in error messages.
    pub fn expected_layout(self) -> String {
        match self {
            Cifar::Ten => format!(
                "{}/ with data_batch_1.bin..data_batch_5.bin and test_batch.bin (10,000 records of \
                 1 label byte + 3072 pixel bytes each) and batches.meta.txt (official \
                 cifar-10-binary.tar.gz)",
                self.dir_name()
            ),
            Cifar::Hundred => format!(
                "{}/ with train.bin (50,000) and test.bin (10,000 records of coarse byte + fine \
                 byte + 3072 pixel bytes) and fine_label_names.txt (official \
                 cifar-100-binary.tar.gz)",
                self.dir_name()
            ),
        }
    }

    /// Number of records of `part` on disk in `dir`, checking presence and (official) sizes
    /// only.
    pub fn count_records(self, dir: &Path, part: Part) -> Result<usize> {
        let mut total = 0;
        for f in self.files(part) {
            total += self.file_records(dir, part, f, Sizes::Official)?.1;
        }
        Ok(total)
    }

    /// Checks presence and size of one file; returns its path and record count.
    fn file_records(self, dir: &Path, part: Part, file: &str, sizes: Sizes) -> Result<(PathBuf, usize)> {
        let path = dir.join(file);
        if !path.is_file() {
            return Err(DataError::MissingFile {
                dir: dir.to_path_buf(),
                file: file.to_string(),
                expected_layout: self.expected_layout(),
            });
        }
        let size = std::fs::metadata(&path).map_err(|e| DataError::io(&path, e))?.len();
        let rec = self.record_bytes() as u64;
        match sizes {
            Sizes::Official => {
                let records = self.official_records(part);
                let expected = records as u64 * rec;
                if size != expected {
                    return Err(DataError::WrongFileSize { path, size, expected, records, record_size: rec });
                }
            }
            Sizes::Sample => {
                if size % rec != 0 {
                    return Err(DataError::PartialRecord { path, size, record_size: rec });
                }
            }
        }
        Ok((path, (size / rec) as usize))
    }

    /// Reads `part` from `dir` (the directory holding the `.bin` files, in the official
    /// layout and sizes), up to `limit`. Class names are read when the names file is present
    /// (a warning event otherwise).
    pub fn read(self, dir: &Path, part: Part, limit: RecordLimit) -> Result<ImageSet> {
        self.read_sized(dir, part, limit, Sizes::Official)
    }

    /// [`Cifar::read`] for a sample copy: the official file names, each holding any whole
    /// number of records (the shared 20-image CIFAR-100 test sample; test fixtures).
    pub fn read_sample(self, dir: &Path, part: Part, limit: RecordLimit) -> Result<ImageSet> {
        self.read_sized(dir, part, limit, Sizes::Sample)
    }

    fn read_sized(self, dir: &Path, part: Part, limit: RecordLimit, sizes: Sizes) -> Result<ImageSet> {
        // Validate every file first (presence, size), then decide how much to read.
        let mut plan = Vec::new();
        let mut remaining = match limit {
            RecordLimit::Total(n) => n,
            _ => usize::MAX,
        };
        for f in self.files(part) {
            let (path, n) = self.file_records(dir, part, f, sizes)?;
            let take = match limit {
                RecordLimit::All => n,
                RecordLimit::PerFile(k) => n.min(k),
                RecordLimit::Total(_) => n.min(remaining),
            };
            remaining -= take.min(remaining);
            plan.push((path, take));
        }
        let total: usize = plan.iter().map(|(_, t)| t).sum();
        let mut pixels = vec![0u8; total * IMAGE_BYTES];
        let mut labels = vec![0u8; total];
        let mut coarse = match self {
            Cifar::Hundred => Some(vec![0u8; total]),
            Cifar::Ten => None,
        };
        let mut at = 0;
        for (path, take) in &plan {
            if *take == 0 {
                continue;
            }
            let file = File::open(path).map_err(|e| DataError::io(path, e))?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let mut lab = [0u8; 2];
            for r in 0..*take {
                let i = at + r;
                let lb = &mut lab[..self.label_bytes()];
                reader.read_exact(lb).map_err(|e| DataError::io(path, e))?;
                reader
                    .read_exact(&mut pixels[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES])
                    .map_err(|e| DataError::io(path, e))?;
                match self {
                    Cifar::Ten => {
                        check_label(path, r, "label", lab[0], 10)?;
                        labels[i] = lab[0];
                    }
                    Cifar::Hundred => {
                        check_label(path, r, "coarse", lab[0], 20)?;
                        check_label(path, r, "fine", lab[1], 100)?;
                        labels[i] = lab[1];
                        if let Some(c) = coarse.as_mut() {
                            c[i] = lab[0];
                        }
                    }
                }
            }
            at += take;
        }
        let names_file = match self {
            Cifar::Ten => CIFAR10_NAMES_FILE,
            Cifar::Hundred => CIFAR100_FINE_NAMES_FILE,
        };
        let names_path = dir.join(names_file);
        let class_names = if names_path.is_file() {
            read_class_names(&names_path, self.num_classes())?
        } else {
            tracing::warn!(path = %names_path.display(), "class-name file absent; names left empty");
            Vec::new()
        };
        tracing::debug!(dir = %dir.display(), ?part, records = total, "read CIFAR records");
        Ok(ImageSet {
            pixels,
            labels,
            coarse_labels: coarse,
            num_classes: self.num_classes(),
            class_names,
        })
    }
}

fn check_label(path: &Path, record: usize, field: &'static str, value: u8, n: usize) -> Result<()> {
    if (value as usize) < n {
        Ok(())
    } else {
        Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            record,
            field,
            value,
            num_classes: n,
        })
    }
}

/// Reads a class-name file (one name per line, blank lines ignored) and checks that it holds
/// exactly `expected` names.
pub fn read_class_names(path: &Path, expected: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let names: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if names.len() != expected {
        return Err(DataError::ClassNames {
            path: path.to_path_buf(),
            expected,
            found: names.len(),
        });
    }
    Ok(names)
}
