//! LIBSVM reading (every malformed case names the file and line), bias, splits, CSR checks.
use std::io::Write;

use bigbatch::Error;
use bigbatch::data::{CsrMatrix, Dataset, Features, dense_threshold, load_libsvm, parse_libsvm};
use ndarray::{Array1, array};

fn parse_err(text: &str, d: Option<usize>) -> (usize, String) {
    match parse_libsvm::<f64, _>(text.as_bytes(), "t.svm", d) {
        Err(Error::Parse { file, line, reason }) => {
            assert_eq!(file, "t.svm");
            (line, reason)
        }
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

#[test]
fn every_malformed_line_names_its_line_and_problem() {
    let ok = "+1 1:0.5 3:1\n";
    let cases: [(&str, usize, &str); 11] = [
        ("abc 1:1\n", 1, "bad label"),
        ("1 1:x\n", 1, "bad value"),
        ("1 a:1\n", 1, "bad index"),
        ("1 0:1\n", 1, "index 0"),
        ("1 3:1 2:1\n", 1, "must increase"),
        ("1 2:1 2:1\n", 1, "must increase"),
        ("1 1:nan\n", 1, "not finite"),
        ("1 1:inf\n", 1, "not finite"),
        ("nan 1:1\n", 1, "not finite"),
        ("1 1\n", 1, "not `index:value`"),
        ("1 9:1\n", 1, "beyond the 5 features"),
    ];
    for (bad, line, words) in cases {
        let text = format!("{ok}\n{bad}");
        let (got_line, reason) = parse_err(&text, Some(5));
        assert_eq!(got_line, line + 2, "{bad:?}: {reason}");
        assert!(reason.contains(words), "{bad:?}: {reason}");
    }
    // Binary content.
    let (line, reason) = parse_err("1 1:1\n\u{0}\u{1}\u{2}", None);
    assert_eq!(line, 2);
    assert!(reason.contains("binary"), "{reason}");
    let bytes: &[u8] = &[b'1', b' ', 0xff, 0xfe, b'\n'];
    assert!(matches!(
        parse_libsvm::<f32, _>(bytes, "b", None),
        Err(Error::Parse { line: 1, .. })
    ));
    // Empty, or only comments.
    assert!(matches!(
        parse_libsvm::<f64, _>("".as_bytes(), "e", None),
        Err(Error::InvalidData { .. })
    ));
    assert!(matches!(
        parse_libsvm::<f64, _>("# nothing\n\n".as_bytes(), "e", None),
        Err(Error::InvalidData { .. })
    ));
}

#[test]
fn parses_values_comments_and_feature_counts() {
    let text = "+1 1:0.5 3:-2e-1 # a comment\n\n-1\n0 2:4\n";
    let d = parse_libsvm::<f64, _>(text.as_bytes(), "t", None).unwrap();
    assert_eq!(
        (d.n_samples(), d.n_features()),
        (3, 3),
        "d from the largest index"
    );
    assert_eq!(d.targets(), &array![1.0, -1.0, 0.0]);
    assert_eq!(
        d.features().to_dense(),
        array![[0.5, 0.0, -0.2], [0.0, 0.0, 0.0], [0.0, 4.0, 0.0]]
    );
    let d = parse_libsvm::<f32, _>(text.as_bytes(), "t", Some(10)).unwrap();
    assert_eq!(d.n_features(), 10, "the given count, larger than any index");
}

/// Rows at least `dense_threshold` dense are stored dense (1/4 for f64, 1/6 for f32: dense
/// rows at most twice the memory of sparse ones), sparser ones sparse, with the same values
/// either way.
#[test]
fn the_storage_follows_the_density() {
    assert_eq!(dense_threshold::<f64>(), 0.25);
    assert_eq!(dense_threshold::<f32>(), 1.0 / 6.0);
    // 4 rows × 4 columns: 4 values (25 %) and 3 values (18.75 %), around the f64 threshold.
    let at = "1 1:1\n1 2:2\n-1 3:3\n-1 4:4\n";
    let below = "1 1:1\n1 2:2\n-1 3:3\n-1\n";
    for (text, dense, share) in [(at, true, 0.25), (below, false, 0.1875)] {
        let d = parse_libsvm::<f64, _>(text.as_bytes(), "t", Some(4)).unwrap();
        assert_eq!(d.features().is_dense(), dense, "{text:?}");
        assert_eq!(d.features().density(), share);
        let sparse = d.clone().into_sparse();
        assert!(!sparse.features().is_dense());
        assert_eq!(
            sparse.features().density(),
            share,
            "the same share either way"
        );
        assert_eq!(sparse.features().to_dense(), d.features().to_dense());
    }
    // Rows too wide for their cells to be counted in `usize` stay sparse (found by fuzzing).
    let wide = parse_libsvm::<f64, _>("2 8:2 9999999999999999998:1\n9\n".as_bytes(), "t", None);
    let wide = wide.unwrap();
    assert!(!wide.features().is_dense() && wide.features().density() < 1e-18);
    // In f32 18.75 % is above the threshold, 3 values in 5 columns (15 %) below it.
    let f = parse_libsvm::<f32, _>(below.as_bytes(), "t", Some(4)).unwrap();
    assert!(f.features().is_dense());
    let f = parse_libsvm::<f32, _>(below.as_bytes(), "t", Some(5)).unwrap();
    assert!(!f.features().is_dense());
}

#[test]
fn files_plain_and_gzip_give_the_same_data_and_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("bigbatch-data-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = "1 1:1 2:2\n-1 2:3\n";
    let plain = dir.join("a.svm");
    std::fs::write(&plain, text).unwrap();
    let gz = dir.join("a.svm.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    let compressed = enc.finish().unwrap();
    std::fs::write(&gz, &compressed).unwrap();
    let a = load_libsvm::<f64>(&plain, Some(2)).unwrap();
    let b = load_libsvm::<f64>(&gz, Some(2)).unwrap();
    assert_eq!(a, b);
    // A truncated gzip file is an I/O error naming the file.
    let cut = dir.join("cut.svm.gz");
    std::fs::write(&cut, &compressed[..compressed.len() / 2]).unwrap();
    match load_libsvm::<f64>(&cut, None) {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("cut.svm.gz")),
        Err(Error::Parse { file, .. }) => assert!(file.ends_with("cut.svm.gz")),
        other => panic!("{other:?}"),
    }
    match load_libsvm::<f64>(dir.join("missing.svm"), None) {
        Err(e @ Error::Io { .. }) => {
            let Error::Io { path, source } = &e else {
                unreachable!()
            };
            assert!(path.ends_with("missing.svm"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            // The operating system's error is the source, as `std::error::Error` sees it.
            assert!(std::error::Error::source(&e).is_some());
        }
        other => panic!("{other:?}"),
    }
    let bad = dir.join("bad.svm");
    std::fs::write(&bad, "1 1:1\n1 2:1 1:1\n").unwrap();
    let msg = load_libsvm::<f64>(&bad, None).unwrap_err().to_string();
    assert!(msg.contains("bad.svm") && msg.contains("line 2"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bias_select_split_and_conversions() {
    let x = array![[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 0.0], [5.0, 6.0]];
    let y = array![1.0, 2.0, 3.0, 4.0, 5.0];
    let dense = Dataset::from_dense(x.clone(), y.clone()).unwrap();
    let sparse = dense.clone().into_sparse();
    assert!(matches!(sparse.features(), Features::Sparse(m) if m.nnz() == 5));
    for d in [dense.clone(), sparse.clone()] {
        let b = d.with_bias();
        assert_eq!(b.n_features(), 3);
        let m = b.features().to_dense();
        assert!(m.column(2).iter().all(|&v| v == 1.0));
        assert_eq!(m.column(0), x.column(0));
    }
    assert_eq!(sparse.clone().into_dense(), dense);
    let sel = sparse.select(&[4, 0]);
    assert_eq!(sel.targets(), &array![5.0, 1.0]);
    assert_eq!(sel.features().to_dense(), array![[5.0, 6.0], [1.0, 0.0]]);
    // Split: sizes, disjoint, covering, order kept, seeded.
    let big = Dataset::from_dense(
        ndarray::Array2::zeros((100, 1)),
        Array1::from_iter((0..100).map(f64::from)),
    )
    .unwrap();
    let (train, test) = big.split(0.25, 7).unwrap();
    assert_eq!((train.n_samples(), test.n_samples()), (75, 25));
    let mut all: Vec<f64> = train
        .targets()
        .iter()
        .chain(test.targets().iter())
        .cloned()
        .collect();
    assert!(
        train.targets().as_slice().unwrap().is_sorted()
            && test.targets().as_slice().unwrap().is_sorted()
    );
    all.sort_by(f64::total_cmp);
    assert_eq!(all, (0..100).map(f64::from).collect::<Vec<_>>());
    assert_eq!(big.split(0.25, 7).unwrap().1, test);
    assert_ne!(big.split(0.25, 8).unwrap().1, test);
    assert!(matches!(
        big.split(1.5, 0),
        Err(Error::InvalidParameter {
            name: "test_fraction",
            ..
        })
    ));
}

#[test]
fn bad_data_is_rejected_with_its_place() {
    let e = Dataset::from_dense(array![[1.0, f64::NAN]], array![1.0]).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidData { what } if what.contains("feature 1 of sample 0")),
        "{e}"
    );
    let e = Dataset::from_dense(array![[1.0], [2.0]], array![1.0, f64::INFINITY]).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidData { what } if what.contains("sample 1")),
        "{e}"
    );
    assert!(matches!(
        Dataset::from_dense(array![[1.0]], array![1.0, 2.0]),
        Err(Error::DimensionMismatch { .. })
    ));
    for (indptr, indices) in [
        (vec![0, 2], vec![1, 0]),
        (vec![0, 1], vec![5]),
        (vec![1, 1], vec![0]),
        (vec![0, 3], vec![0]),
    ] {
        let n = indices.len();
        assert!(matches!(
            CsrMatrix::<f64>::new(3, indptr, indices, vec![1.0; n]),
            Err(Error::InvalidData { .. })
        ));
    }
    assert!(CsrMatrix::<f64>::new(3, vec![0, 1, 3], vec![2, 0, 1], vec![1.0, 2.0, 3.0]).is_ok());
}

#[test]
fn values_that_overflow_the_target_type_are_refused_with_file_line_and_value() {
    // 1e39 is finite in f64 but not in f32.
    let text = "1 1:1 2:1\n1 1:1e39 2:1\n";
    assert!(parse_libsvm::<f64, _>(text.as_bytes(), "big.svm", None).is_ok());
    match parse_libsvm::<f32, _>(text.as_bytes(), "big.svm", None) {
        Err(Error::Parse { file, line, reason }) => {
            assert_eq!((file.as_str(), line), ("big.svm", 2));
            assert!(
                reason.contains("1e39") && reason.contains("f32"),
                "{reason}"
            );
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    match parse_libsvm::<f32, _>("-1e39 1:1\n".as_bytes(), "label.svm", None) {
        Err(Error::Parse {
            line: 1, reason, ..
        }) => {
            assert!(
                reason.contains("label") && reason.contains("-1e39"),
                "{reason}"
            );
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    // A value that underflows to zero in f32 is a zero, not an error.
    let tiny = parse_libsvm::<f32, _>("1 1:1e-50 2:3\n".as_bytes(), "tiny.svm", None).unwrap();
    assert_eq!(tiny.features().to_dense(), array![[0.0f32, 3.0]]);
}
