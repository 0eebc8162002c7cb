//! `DataLoader`: shuffled, transformed batches, optionally assembled ahead by background threads.
//!
//! Reproducibility is by construction: the order of an epoch is a function of (seed, epoch) and
//! the random stream of each sample's transform a function of (seed, epoch, sample index). No
//! state carries from one epoch to the next, so resuming at epoch k gives the batches an
//! uninterrupted run would have seen, and the number of worker threads changes only the speed.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use shendu_core::{Rng, Tensor};

use crate::{Dataset, Error, Result, Transform};

/// One batch: inputs f32 `[B, ...input_shape]` (the shape after transforms), targets i64 `[B]`,
/// and the dataset indices the rows came from.
#[derive(Clone, Debug)]
pub struct Batch {
    pub inputs: Tensor,
    pub targets: Tensor,
    pub indices: Vec<usize>,
}

impl Batch {
    /// The number of samples in the batch.
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    /// Whether the batch has no samples (never true for batches a loader yields).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Batches of a [`Dataset`]; see the module docs for the reproducibility guarantee.
#[derive(Clone)]
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    seed: u64,
    prefetch: usize,
    workers: usize,
    transform: Option<Arc<dyn Transform>>,
}

const SHUFFLE_STREAM: u64 = 1;
const SAMPLE_STREAM: u64 = 2;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A well-mixed seed for one (seed, epoch, stream, item) tuple.
fn derive_seed(seed: u64, epoch: u64, stream: u64, item: u64) -> u64 {
    [epoch, stream, item].iter().fold(splitmix(seed), |h, &v| splitmix(h ^ splitmix(v)))
}

impl DataLoader {
    /// A loader of `batch_size` samples in dataset order, synchronous, without transforms.
    pub fn new(dataset: Arc<dyn Dataset>, batch_size: usize) -> Result<DataLoader> {
        if batch_size == 0 {
            return Err(Error::invalid("DataLoader::new", "batch_size must be at least 1"));
        }
        Ok(DataLoader { dataset, batch_size, shuffle: false, drop_last: false, seed: 0, prefetch: 0, workers: 1, transform: None })
    }

    /// Reshuffles every epoch (by seed and epoch number).
    pub fn shuffle(mut self, on: bool) -> Self {
        self.shuffle = on;
        self
    }
    /// Drops the last batch when it would be smaller than `batch_size`.
    pub fn drop_last(mut self, on: bool) -> Self {
        self.drop_last = on;
        self
    }
    /// The seed of shuffling and random transforms.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// How many batches background threads may assemble ahead of the consumer; 0 makes batches
    /// on the consumer's thread when it asks for them.
    pub fn prefetch(mut self, n_batches: usize) -> Self {
        self.prefetch = n_batches;
        self
    }
    /// How many background threads share the prefetching (default 1; used only with prefetch).
    pub fn num_workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }
    /// The per-sample transform (use [`crate::Compose`] for several).
    pub fn transform(mut self, t: Arc<dyn Transform>) -> Self {
        self.transform = Some(t);
        self
    }

    /// The dataset batches are drawn from.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }
    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch.
    pub fn len_batches(&self) -> usize {
        let n = self.dataset.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The order samples are visited in during `epoch`.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.shuffle {
            let mut rng = Rng::new(derive_seed(self.seed, epoch as u64, SHUFFLE_STREAM, 0));
            for i in (1..order.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
        }
        order
    }

    fn plan(&self, epoch: usize) -> Arc<Plan> {
        Arc::new(Plan {
            dataset: self.dataset.clone(),
            transform: self.transform.clone(),
            order: self.order(epoch),
            batch_size: self.batch_size,
            n_batches: self.len_batches(),
            seed: self.seed,
            epoch: epoch as u64,
        })
    }

    /// The batches of `epoch`, in order.
    pub fn epoch(&self, epoch: usize) -> Epoch {
        self.epoch_from(epoch, 0)
    }

    /// The batches of `epoch` from batch `first_batch` on: resuming mid-epoch gives the same
    /// batches as the uninterrupted epoch.
    pub fn epoch_from(&self, epoch: usize, first_batch: usize) -> Epoch {
        let plan = self.plan(epoch);
        let end = plan.n_batches;
        let first = first_batch.min(end);
        if self.prefetch == 0 || first == end {
            return Epoch { plan, next: first, end, first, receivers: Vec::new(), handles: Vec::new() };
        }
        let workers = self.workers.min(self.prefetch).min(end - first);
        // A rendezvous channel already holds one finished batch per blocked worker.
        let capacity = self.prefetch.div_ceil(workers).saturating_sub(1);
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = sync_channel(capacity);
            let worker_plan = plan.clone();
            let spawned = std::thread::Builder::new().name(format!("shendu-data-{w}")).spawn(move || {
                for k in (first + w..end).step_by(workers) {
                    if tx.send(worker_plan.batch(k)).is_err() {
                        break; // The consumer dropped the epoch.
                    }
                }
            });
            match spawned {
                Ok(h) => {
                    receivers.push(rx);
                    handles.push(h);
                }
                // Without threads the batches can still be made on the consumer's thread.
                Err(_) => {
                    drop(receivers);
                    for h in handles {
                        let _ = h.join();
                    }
                    return Epoch { plan, next: first, end, first, receivers: Vec::new(), handles: Vec::new() };
                }
            }
        }
        Epoch { plan, next: first, end, first, receivers, handles }
    }

    /// Batch `k` of `epoch`, made on this thread.
    pub fn batch(&self, epoch: usize, k: usize) -> Result<Batch> {
        let n = self.len_batches();
        if k >= n {
            return Err(Error::invalid("DataLoader::batch", format!("batch {k} is out of range for an epoch of {n} batches")));
        }
        self.plan(epoch).batch(k)
    }
}

/// What every thread needs to make any batch of one epoch.
struct Plan {
    dataset: Arc<dyn Dataset>,
    transform: Option<Arc<dyn Transform>>,
    order: Vec<usize>,
    batch_size: usize,
    n_batches: usize,
    seed: u64,
    epoch: u64,
}

impl Plan {
    fn batch(&self, k: usize) -> Result<Batch> {
        let start = k * self.batch_size;
        let indices = self.order[start..(start + self.batch_size).min(self.order.len())].to_vec();
        let base_shape = self.dataset.input_shape();
        let mut batch_shape: Option<Vec<usize>> = None;
        let mut inputs = Vec::new();
        let mut targets = shendu_core::pool::vec_with_capacity(indices.len());
        for &i in &indices {
            let sample = self.dataset.get(i)?;
            let mut x = sample.input;
            let mut shape = base_shape.clone();
            let want: usize = shape.iter().product();
            if x.len() != want {
                return Err(Error::invalid(
                    "DataLoader",
                    format!("sample {i} has {} values but the dataset's input shape {shape:?} needs {want}", x.len()),
                ));
            }
            if let Some(t) = &self.transform {
                let mut rng = Rng::new(derive_seed(self.seed, self.epoch, SAMPLE_STREAM, i as u64));
                t.apply(&mut x, &mut shape, &mut rng)?;
                let want: usize = shape.iter().product();
                if x.len() != want {
                    return Err(Error::invalid(
                        "DataLoader",
                        format!("the transform left sample {i} with {} values for shape {shape:?} ({want} values)", x.len()),
                    ));
                }
            }
            match &batch_shape {
                None => {
                    inputs = shendu_core::pool::vec_with_capacity(x.len() * indices.len());
                    batch_shape = Some(shape);
                }
                Some(s) if *s != shape => {
                    return Err(Error::invalid(
                        "DataLoader",
                        format!("sample {i} has shape {shape:?} but earlier samples of its batch have {s:?}; samples must agree to stack"),
                    ));
                }
                Some(_) => {}
            }
            inputs.extend_from_slice(&x);
            targets.push(sample.label);
        }
        let mut dims = vec![indices.len()];
        dims.extend(batch_shape.unwrap_or(base_shape));
        let b = indices.len();
        Ok(Batch { inputs: Tensor::from_vec(inputs, dims)?, targets: Tensor::from_vec(targets, vec![b])?, indices })
    }
}

/// The batches of one epoch; an iterator of `Result<Batch>`. Dropping it stops the workers.
pub struct Epoch {
    plan: Arc<Plan>,
    next: usize,
    end: usize,
    first: usize,
    receivers: Vec<Receiver<Result<Batch>>>,
    handles: Vec<JoinHandle<()>>,
}

impl Iterator for Epoch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.end {
            return None;
        }
        let k = self.next;
        self.next += 1;
        if self.receivers.is_empty() {
            return Some(self.plan.batch(k));
        }
        let rx = &self.receivers[(k - self.first) % self.receivers.len()];
        match rx.recv() {
            Ok(b) => Some(b),
            Err(_) => {
                self.next = self.end;
                Some(Err(Error::invalid("DataLoader", format!("the worker making batch {k} stopped (it panicked)"))))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Epoch {}

impl Drop for Epoch {
    fn drop(&mut self) {
        // Closing the channels first makes blocked workers return.
        self.receivers.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
