//! IDX reader on generated files (plain and gzip) and on Debian's Fashion-MNIST if installed.

mod common;

use std::io::Write;
use std::path::Path;

use data::cifar::Part;
use data::idx::encode_idx;
use data::{DataError, FASHION_MNIST_DEBIAN_DIR, read_fashion_mnist, read_idx};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write_fake_fashion(dir: &Path, n: usize, gz: bool) -> Vec<u8> {
    let images: Vec<u8> = (0..n * 784).map(|i| (i % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i * 3 % 10) as u8).collect();
    let img = encode_idx(&[n as u32, 28, 28], &images);
    let lab = encode_idx(&[n as u32], &labels);
    let (ext, img, lab) = if gz { (".gz", gzip(&img), gzip(&lab)) } else { ("", img, lab) };
    std::fs::write(dir.join(format!("t10k-images-idx3-ubyte{ext}")), img).unwrap();
    std::fs::write(dir.join(format!("t10k-labels-idx1-ubyte{ext}")), lab).unwrap();
    images
}

#[test]
fn generated_idx_is_padded_and_replicated() {
    for gz in [false, true] {
        let dir = common::scratch(if gz { "idx_gz" } else { "idx_plain" });
        let images = write_fake_fashion(&dir, 5, gz);
        let set = read_fashion_mnist(&dir, Part::Test, None).unwrap();
        assert_eq!(set.len(), 5);
        assert_eq!(set.labels, [0, 3, 6, 9, 2]);
        assert_eq!(set.class_names[9], "Ankle boot");
        for i in 0..5 {
            let img = set.image(i);
            for c in 0..3 {
                for y in 0..32 {
                    for x in 0..32 {
                        let v = img[c * 1024 + y * 32 + x];
                        let inside = (2..30).contains(&y) && (2..30).contains(&x);
                        let want = if inside { images[i * 784 + (y - 2) * 28 + (x - 2)] } else { 0 };
                        assert_eq!(v, want, "gz {gz} image {i} c {c} y {y} x {x}");
                    }
                }
            }
        }
        let limited = read_fashion_mnist(&dir, Part::Test, Some(2)).unwrap();
        assert_eq!(limited.len(), 2);
        assert_eq!(limited.image(1), set.image(1));
    }
}

#[test]
fn bad_magic_and_sizes_are_rejected() {
    let dir = common::scratch("idx_bad");
    let p = dir.join("x");
    let mut b = encode_idx(&[2, 2], &[1, 2, 3, 4]);
    b[2] = 0x0D; // float type
    std::fs::write(&p, &b).unwrap();
    let msg = read_idx(&p).unwrap_err().to_string();
    assert!(msg.contains("0x08") && msg.contains("13") && msg.contains(&p.display().to_string()), "{msg}");
    std::fs::write(&p, encode_idx(&[2, 2], &[1, 2, 3])).unwrap();
    assert!(matches!(read_idx(&p), Err(DataError::Mismatch { left: 3, right: 4, .. })));
    std::fs::write(&p, [1u8, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    assert!(matches!(read_idx(&p), Err(DataError::IdxHeader { .. })));
    // Label count disagreeing with image count.
    write_fake_fashion(&dir, 3, false);
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), encode_idx(&[2], &[0, 1])).unwrap();
    let err = read_fashion_mnist(&dir, Part::Test, None).unwrap_err();
    assert!(matches!(err, DataError::CountMismatch { label_count: 2, image_count: 3, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte") && msg.contains("t10k-images-idx3-ubyte"), "{msg}");
    // Label out of range.
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), encode_idx(&[3], &[0, 10, 1])).unwrap();
    let msg = read_fashion_mnist(&dir, Part::Test, None).unwrap_err().to_string();
    assert!(msg.contains("record 1") && msg.contains("10"), "{msg}");
    let empty = common::scratch("idx_missing");
    let msg = read_fashion_mnist(&empty, Part::Train, None).unwrap_err().to_string();
    assert!(msg.contains("train-images-idx3-ubyte"), "{msg}");
}

#[test]
fn debian_fashion_mnist_if_installed() {
    let dir = Path::new(FASHION_MNIST_DEBIAN_DIR);
    if !dir.is_dir() {
        eprintln!("skipping: {FASHION_MNIST_DEBIAN_DIR} absent (apt-get install dataset-fashion-mnist)");
        return;
    }
    let test = read_fashion_mnist(dir, Part::Test, None).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    // Padding border is zero in every channel; channels are equal.
    for i in [0, 4321, 9999] {
        let img = test.image(i);
        assert!(img[..64].iter().all(|&v| v == 0));
        assert_eq!(img[..1024], img[1024..2048]);
        assert_eq!(img[..1024], img[2048..]);
    }
    let train = read_fashion_mnist(dir, Part::Train, Some(100)).unwrap();
    assert_eq!(train.len(), 100);
    // First training label of Fashion-MNIST is 9 (ankle boot), first test label 9 too.
    assert_eq!((train.labels[0], test.labels[0]), (9, 9));
}
