//! k-means: greedy k-means++ seeding, Lloyd iterations, n_init restarts, and mini-batch k-means.
//!
//! The algorithm follows scikit-learn's `KMeans(algorithm="lloyd")` step for step so that the two
//! can be compared: seeding tries `2 + floor(ln k)` candidates per new centre and keeps the one
//! that lowers the potential most; Lloyd stops when the labels no longer change or when the
//! squared centre shift falls to `tol` times the mean feature variance, and then labels the points
//! once more against the final centres; an empty cluster is moved onto the point farthest from its
//! centre. Point-to-centre distances come from blocked f32 gemm (`||x||^2 + ||c||^2 - 2 x·c`); the
//! reported inertia is recomputed in f64.

use std::time::Instant;

use rayon::prelude::*;
use shendu_core::cpu::gemm::{gemm, MatMut, MatRef};
use shendu_core::cpu::threads;
use shendu_core::Rng;

use crate::{Error, Matrix, Result};

/// Settings of [`fit`].
#[derive(Clone, Debug)]
pub struct KMeansConfig {
    /// Number of clusters (1 <= k <= samples).
    pub k: usize,
    /// Independent seedings; the run with the lowest inertia is kept.
    pub n_init: usize,
    /// Most Lloyd iterations per run (mini-batch: most passes over the data).
    pub max_iter: usize,
    /// Convergence tolerance, relative to the mean feature variance.
    pub tol: f64,
    pub seed: u64,
    /// `Some(b)`: mini-batch k-means with batches of b samples instead of Lloyd.
    pub mini_batch: Option<usize>,
}

impl Default for KMeansConfig {
    fn default() -> Self {
        KMeansConfig { k: 8, n_init: 1, max_iter: 300, tol: 1e-4, seed: 0, mini_batch: None }
    }
}

/// The clustering.
#[derive(Clone, Debug)]
pub struct KMeansResult {
    /// `k` rows of `cols` features.
    pub centroids: Matrix,
    /// The cluster of every sample.
    pub labels: Vec<usize>,
    /// Sum of squared distances of the samples to their centroid.
    pub inertia: f64,
    /// Lloyd iterations (mini-batch steps) of the kept run.
    pub iterations: usize,
    /// Wall time spent seeding, over all runs.
    pub seeding_seconds: f64,
    /// Wall time spent iterating, over all runs, and the iterations it covered.
    pub iterating_seconds: f64,
    pub total_iterations: usize,
}

const ROW_BLOCK: usize = 2048;

/// Squared distances `out[i * c + j] = ||x_i - centres_j||^2` (f32, clamped at 0).
fn sq_distances(x: &Matrix, centres: &[f32], xnorm: &[f32], out: &mut [f32]) {
    let d = x.cols();
    let c = centres.len() / d.max(1);
    let cnorm: Vec<f32> = centres.chunks_exact(d.max(1)).map(|r| r.iter().map(|v| v * v).sum()).collect();
    threads::install(|| {
        out.par_chunks_mut(ROW_BLOCK * c).enumerate().for_each(|(b, tile)| {
            let r0 = b * ROW_BLOCK;
            let rows = tile.len() / c;
            let xs = &x.data()[r0 * d..(r0 + rows) * d];
            // SAFETY: in-bounds slices of the stated shapes; `tile` is rows x c, row stride c.
            unsafe {
                gemm(
                    rows,
                    c,
                    d,
                    MatMut { ptr: tile.as_mut_ptr(), rs: c as isize, cs: 1 },
                    false,
                    MatRef { ptr: xs.as_ptr(), rs: d as isize, cs: 1 },
                    MatRef { ptr: centres.as_ptr(), rs: 1, cs: d as isize },
                    false,
                )
            };
            for (i, row) in tile.chunks_exact_mut(c).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (xnorm[r0 + i] + cnorm[j] - 2.0 * *v).max(0.0);
                }
            }
        })
    });
}

fn sq_norms_f32(x: &Matrix) -> Vec<f32> {
    x.sq_norms().into_iter().map(|v| v as f32).collect()
}

/// Greedy k-means++ (scikit-learn's `_kmeans_plusplus`): the indices of the `k` samples chosen
/// as initial centres.
pub fn kmeans_plusplus(x: &Matrix, k: usize, rng: &mut Rng) -> Result<Vec<usize>> {
    check(x, k)?;
    let n = x.rows();
    let xnorm = sq_norms_f32(x);
    let trials = 2 + (k as f64).ln() as usize;
    let first = rng.below(n as u64) as usize;
    let mut chosen = vec![first];
    let mut closest = vec![0.0f32; n];
    sq_distances(x, x.row(first), &xnorm, &mut closest);
    let mut pot: f64 = closest.iter().map(|&v| v as f64).sum();
    let mut tile = vec![0.0f32; n * trials];
    let mut cumsum = vec![0.0f64; n];
    for _ in 1..k {
        let mut acc = 0.0;
        for (c, &v) in cumsum.iter_mut().zip(&closest) {
            acc += v as f64;
            *c = acc;
        }
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                let r = rng.uniform() * pot;
                cumsum.partition_point(|&c| c < r).min(n - 1)
            })
            .collect();
        let cand_rows: Vec<f32> = candidates.iter().flat_map(|&i| x.row(i).iter().copied()).collect();
        sq_distances(x, &cand_rows, &xnorm, &mut tile);
        let mut best = (f64::INFINITY, 0);
        for t in 0..trials {
            let p: f64 = (0..n).map(|i| tile[i * trials + t].min(closest[i]) as f64).sum();
            if p < best.0 {
                best = (p, t);
            }
        }
        let t = best.1;
        for (i, c) in closest.iter_mut().enumerate() {
            *c = c.min(tile[i * trials + t]);
        }
        pot = best.0;
        chosen.push(candidates[t]);
    }
    Ok(chosen)
}

fn check(x: &Matrix, k: usize) -> Result<()> {
    if x.rows() == 0 || x.cols() == 0 {
        return Err(Error::invalid("kmeans", "the data is empty"));
    }
    if k == 0 || k > x.rows() {
        return Err(Error::invalid("kmeans", format!("k = {k} must be between 1 and the number of samples ({})", x.rows())));
    }
    Ok(())
}

/// The nearest centre of every sample and the squared distance to it (f32 gemm).
pub fn assign(x: &Matrix, centroids: &Matrix) -> Result<(Vec<usize>, Vec<f32>)> {
    if x.cols() != centroids.cols() {
        return Err(Error::invalid("kmeans assign", format!("samples have {} features but centroids {}", x.cols(), centroids.cols())));
    }
    Ok(assign_raw(x, centroids.data(), &sq_norms_f32(x)))
}

fn assign_raw(x: &Matrix, centres: &[f32], xnorm: &[f32]) -> (Vec<usize>, Vec<f32>) {
    let c = centres.len() / x.cols();
    let mut tile = vec![0.0f32; x.rows() * c];
    sq_distances(x, centres, xnorm, &mut tile);
    tile.chunks_exact(c)
        .map(|row| row.iter().enumerate().fold((0, f32::INFINITY), |best, (j, &v)| if v < best.1 { (j, v) } else { best }))
        .unzip()
}

/// Exact f64 inertia of a labelling.
pub fn inertia(x: &Matrix, centres: &[f32], labels: &[usize]) -> f64 {
    let d = x.cols();
    threads::install(|| {
        labels
            .par_iter()
            .enumerate()
            .map(|(i, &l)| x.row(i).iter().zip(&centres[l * d..(l + 1) * d]).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>())
            .sum()
    })
}

/// Centre means of a labelling (f64 sums); empty clusters move to the farthest points.
fn update_centres(x: &Matrix, labels: &[usize], dist: &[f32], k: usize) -> Vec<f32> {
    let d = x.cols();
    let (sums, counts) = threads::install(|| {
        labels
            .par_chunks(ROW_BLOCK)
            .enumerate()
            .map(|(b, ls)| {
                let mut s = vec![0.0f64; k * d];
                let mut n = vec![0usize; k];
                for (i, &l) in ls.iter().enumerate() {
                    n[l] += 1;
                    s[l * d..(l + 1) * d].iter_mut().zip(x.row(b * ROW_BLOCK + i)).for_each(|(a, &v)| *a += v as f64);
                }
                (s, n)
            })
            .reduce(
                || (vec![0.0; k * d], vec![0; k]),
                |(mut s1, mut n1), (s2, n2)| {
                    s1.iter_mut().zip(&s2).for_each(|(a, b)| *a += b);
                    n1.iter_mut().zip(&n2).for_each(|(a, b)| *a += b);
                    (s1, n1)
                },
            )
    });
    let mut centres: Vec<f32> =
        sums.chunks_exact(d).zip(&counts).flat_map(|(s, &n)| s.iter().map(move |v| (v / n.max(1) as f64) as f32)).collect();
    let empty: Vec<usize> = (0..k).filter(|&j| counts[j] == 0).collect();
    if !empty.is_empty() {
        let mut far: Vec<usize> = (0..x.rows()).collect();
        far.sort_by(|&a, &b| dist[b].total_cmp(&dist[a]));
        for (j, &i) in empty.iter().zip(&far) {
            centres[j * d..(j + 1) * d].copy_from_slice(x.row(i));
        }
    }
    centres
}

fn lloyd(x: &Matrix, mut centres: Vec<f32>, xnorm: &[f32], config: &KMeansConfig, tol: f64) -> (Vec<f32>, Vec<usize>, usize) {
    let k = config.k;
    let mut labels_old: Vec<usize> = Vec::new();
    let mut iterations = 0;
    let mut strict = false;
    for it in 1..=config.max_iter.max(1) {
        iterations = it;
        let (labels, dist) = assign_raw(x, &centres, xnorm);
        let new = update_centres(x, &labels, &dist, k);
        let shift: f64 = new.iter().zip(&centres).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
        centres = new;
        if labels == labels_old {
            strict = true;
            break;
        }
        if shift <= tol {
            break;
        }
        labels_old = labels;
    }
    // Label against the final centres (unless they came from these very labels unchanged).
    let labels = if strict { labels_old } else { assign_raw(x, &centres, xnorm).0 };
    (centres, labels, iterations)
}

fn mini_batch(x: &Matrix, mut centres: Vec<f32>, xnorm: &[f32], config: &KMeansConfig, batch: usize, rng: &mut Rng) -> (Vec<f32>, usize) {
    let (n, d, k) = (x.rows(), x.cols(), config.k);
    let batch = batch.min(n);
    let steps = (config.max_iter * n).div_ceil(batch);
    let mut counts = vec![0usize; k];
    let mut bm = Matrix::zeros(batch, d);
    let mut norms = vec![0.0f32; batch];
    for _ in 0..steps {
        for (b, norm) in norms.iter_mut().enumerate() {
            let i = rng.below(n as u64) as usize;
            bm.row_mut(b).copy_from_slice(x.row(i));
            *norm = xnorm[i];
        }
        let (labels, _) = assign_raw(&bm, &centres, &norms);
        let rows = bm.data();
        // Sculley's update: each centre moves towards its samples with rate 1 / (samples seen).
        for (b, &l) in labels.iter().enumerate() {
            counts[l] += 1;
            let eta = 1.0 / counts[l] as f32;
            centres[l * d..(l + 1) * d].iter_mut().zip(&rows[b * d..(b + 1) * d]).for_each(|(c, &v)| *c += eta * (v - *c));
        }
    }
    (centres, steps)
}

/// Clusters the rows of `x` into `config.k` groups.
pub fn fit(x: &Matrix, config: &KMeansConfig) -> Result<KMeansResult> {
    check(x, config.k)?;
    if config.n_init == 0 || config.max_iter == 0 {
        return Err(Error::invalid("kmeans", "n_init and max_iter must be at least 1"));
    }
    if !(config.tol.is_finite() && config.tol >= 0.0) {
        return Err(Error::invalid("kmeans", format!("tol = {} must be finite and non-negative", config.tol)));
    }
    if config.mini_batch == Some(0) {
        return Err(Error::invalid("kmeans", "the mini-batch size must be at least 1"));
    }
    let d = x.cols();
    let tol = config.tol * x.column_variances().iter().sum::<f64>() / d as f64;
    let xnorm = sq_norms_f32(x);
    let mut rng = Rng::new(config.seed);
    let (mut seeding, mut iterating, mut total) = (0.0, 0.0, 0);
    let mut best: Option<(f64, Vec<f32>, Vec<usize>, usize)> = None;
    for _ in 0..config.n_init {
        let t0 = Instant::now();
        let seeds = kmeans_plusplus(x, config.k, &mut rng)?;
        let centres: Vec<f32> = seeds.iter().flat_map(|&i| x.row(i).iter().copied()).collect();
        seeding += t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let (centres, labels, its) = match config.mini_batch {
            None => lloyd(x, centres, &xnorm, config, tol),
            Some(b) => {
                let (c, steps) = mini_batch(x, centres, &xnorm, config, b, &mut rng);
                let labels = assign_raw(x, &c, &xnorm).0;
                (c, labels, steps)
            }
        };
        iterating += t1.elapsed().as_secs_f64();
        total += its;
        let score = inertia(x, &centres, &labels);
        if best.as_ref().is_none_or(|b| score < b.0) {
            best = Some((score, centres, labels, its));
        }
    }
    let Some((inertia, centres, labels, iterations)) = best else {
        return Err(Error::invalid("kmeans", "no run was made"));
    };
    Ok(KMeansResult {
        centroids: Matrix::new(centres, config.k, d)?,
        labels,
        inertia,
        iterations,
        seeding_seconds: seeding,
        iterating_seconds: iterating,
        total_iterations: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(seed: u64) -> Matrix {
        let mut rng = Rng::new(seed);
        let centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
        let data: Vec<f32> = (0..300)
            .flat_map(|i| {
                let (cx, cy) = centres[i % 3];
                [(cx + rng.normal()) as f32, (cy + rng.normal()) as f32]
            })
            .collect();
        Matrix::new(data, 300, 2).unwrap()
    }

    #[test]
    fn finds_three_blobs() {
        let x = blobs(1);
        for mini_batch in [None, Some(32)] {
            let r = fit(&x, &KMeansConfig { k: 3, n_init: 3, mini_batch, ..Default::default() }).unwrap();
            // Every blob is one cluster.
            for blob in 0..3 {
                let l = r.labels[blob];
                assert!((blob..300).step_by(3).all(|i| r.labels[i] == l), "{mini_batch:?}");
            }
            assert!(r.inertia < 2.6 * 300.0, "{}", r.inertia);
        }
    }

    #[test]
    fn bad_k() {
        let x = blobs(2);
        assert!(fit(&x, &KMeansConfig { k: 301, ..Default::default() }).unwrap_err().to_string().contains("k = 301"));
        assert!(fit(&x, &KMeansConfig { k: 0, ..Default::default() }).is_err());
    }
}
