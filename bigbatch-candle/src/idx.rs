//! The IDX files of MNIST and Fashion-MNIST (plain or gzip): images as `f32` pixels in
//! [0, 1], labels as class indices.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::Error;

/// Images and labels of one split.
#[derive(Debug, Clone)]
pub struct Split {
    /// `n × rows × cols` pixels in [0, 1], row-major.
    pub images: Vec<f32>,
    /// The class of each image.
    pub labels: Vec<u32>,
    /// The number of images.
    pub n: usize,
    /// Rows and columns of an image.
    pub shape: (usize, usize),
}

fn read_all(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Model(format!("cannot read {}: {e}", path.display())))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::Model(format!("{}: not valid gzip: {e}", path.display())))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// The header of an IDX file of unsigned bytes: its dimensions, and the data after it.
fn parse(path: &Path, bytes: &[u8], rank: usize) -> Result<(Vec<usize>, usize), Error> {
    let bad = |what: &str| Error::Model(format!("{}: {what}", path.display()));
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(bad("not an IDX file of unsigned bytes"));
    }
    if usize::from(bytes[3]) != rank {
        return Err(bad(&format!("{} dimensions, expected {rank}", bytes[3])));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(bad("truncated header"));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let len: usize = dims.iter().product();
    if bytes.len() != header + len {
        return Err(bad(&format!(
            "{} data bytes for dimensions {dims:?}",
            bytes.len() - header
        )));
    }
    Ok((dims, header))
}

/// The first of `names` that exists in `dir`.
fn find(dir: &Path, names: &[&str]) -> Result<PathBuf, Error> {
    names
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .ok_or_else(|| {
            Error::Model(format!(
                "{} holds none of {names:?}: the MNIST or Fashion-MNIST IDX files are needed \\
                 (Debian: `apt-get install dataset-fashion-mnist`, or the original files)",
                dir.display()
            ))
        })
}

/// Reads the split `"train"` or `"t10k"` from a folder of the four original files
/// (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, and the same for `t10k`).
///
/// # Errors
/// [`Error::Model`] naming the folder and the files it needs if they are missing, or the file
/// that is not a valid IDX file, or images and labels whose counts differ.
pub fn read_split(dir: impl AsRef<Path>, split: &str) -> Result<Split, Error> {
    let dir = dir.as_ref();
    let images = find(
        dir,
        &[
            &format!("{split}-images-idx3-ubyte.gz"),
            &format!("{split}-images-idx3-ubyte"),
        ],
    )?;
    let labels = find(
        dir,
        &[
            &format!("{split}-labels-idx1-ubyte.gz"),
            &format!("{split}-labels-idx1-ubyte"),
        ],
    )?;
    let (ib, lb) = (read_all(&images)?, read_all(&labels)?);
    let (idims, ih) = parse(&images, &ib, 3)?;
    let (ldims, lh) = parse(&labels, &lb, 1)?;
    if idims[0] != ldims[0] {
        return Err(Error::Model(format!(
            "{} images but {} labels",
            idims[0], ldims[0]
        )));
    }
    Ok(Split {
        images: ib[ih..].iter().map(|&p| f32::from(p) / 255.0).collect(),
        labels: lb[lh..].iter().map(|&l| u32::from(l)).collect(),
        n: idims[0],
        shape: (idims[1], idims[2]),
    })
}
