//! The tasks: networks' data sets, loaded into tensors.

use super::*;

pub(crate) struct Task {
    pub(crate) name: &'static str,
    pub(crate) cnn: bool,
    pub(crate) x: Tensor,
    pub(crate) y: Tensor,
    pub(crate) test: (Tensor, Tensor),
}

impl Task {
    pub(crate) fn load(name: &str, data: Option<&str>, train: Option<usize>) -> Res<Task> {
        let dev = Device::Cpu;
        let tensors = |images: &[f32], labels: &[u32], n: usize| -> Res<(Tensor, Tensor)> {
            Ok((
                Tensor::from_slice(&images[..n * 784], (n, 784), &dev)?,
                Tensor::from_slice(&labels[..n], n, &dev)?,
            ))
        };
        let (name, cnn, default_train) = match name {
            "cnn" => ("cnn", true, 3000),
            "mlp" => ("mlp", false, usize::MAX),
            "mnist" => ("mnist", false, usize::MAX),
            other => return Err(format!("unknown task {other} (cnn, mlp or mnist)").into()),
        };
        let n_train = train.unwrap_or(default_train);
        let ((x, y), test) = if name == "mnist" {
            let dir = PathBuf::from(data.unwrap_or("../shared/data"));
            let read = |split: &str| -> Res<(Vec<f32>, Vec<u32>)> {
                let path = dir.join(format!("mnist10k.{split}.svm.gz"));
                if !path.exists() {
                    return Err(format!(
                        "the mnist task needs {} (MNIST in LIBSVM format, labels 0..9); \
                         pass its directory with --data",
                        path.display()
                    )
                    .into());
                }
                let d = bigbatch::data::load_libsvm::<f32>(&path, Some(784))?.into_dense();
                let bigbatch::data::Features::Dense(x) = d.features() else {
                    return Err("dense features expected".into());
                };
                let labels = d.targets().iter().map(|&t| t as u32).collect();
                Ok((x.iter().copied().collect(), labels))
            };
            let (xs, ys) = read("train")?;
            let (ts, tl) = read("test")?;
            let n = ys.len().min(n_train);
            (tensors(&xs, &ys, n)?, tensors(&ts, &tl, tl.len())?)
        } else {
            let dir = data.unwrap_or("../shared/data/fashion-mnist");
            let train = idx::read_split(dir, "train")?;
            let test = idx::read_split(dir, "t10k")?;
            let n = train.n.min(n_train);
            (
                tensors(&train.images, &train.labels, n)?,
                tensors(&test.images, &test.labels, test.n)?,
            )
        };
        Ok(Task {
            name,
            cnn,
            x,
            y,
            test,
        })
    }

    pub(crate) fn n(&self) -> usize {
        self.x.dim(0).unwrap_or(0)
    }
}
