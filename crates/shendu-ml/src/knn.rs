//! k-nearest neighbours by exact brute force.
//!
//! Distances between a block of queries and a chunk of training rows come from one gemm
//! (`||a||^2 + ||b||^2 - 2 a·b` for L2, `1 - a·b` on unit rows for cosine; L1 has no product form
//! and is summed directly). The f32 product loses digits to cancellation when two candidates are
//! nearly equidistant, so each query keeps a few more candidates than k and re-ranks them by
//! distances recomputed exactly in f64: the neighbours are those of exact arithmetic unless a
//! true neighbour fell more than [`RERANK_MARGIN`] places behind in f32, which would need an
//! error far above f32's.

use rayon::prelude::*;
use shendu_core::cpu::gemm::{gemm, MatMut, MatRef};
use shendu_core::cpu::threads;

use crate::{Error, Matrix, Result};

/// The distance between samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Euclidean distance.
    L2,
    /// Manhattan distance.
    L1,
    /// `1 - cos(a, b)` (a zero vector is at distance 1 from everything).
    Cosine,
}

/// How neighbours vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    /// Every neighbour counts 1.
    Uniform,
    /// A neighbour counts `1 / distance`; neighbours at distance 0, if any, take all the weight.
    Distance,
}

/// Extra candidates per query that are re-ranked in f64.
pub const RERANK_MARGIN: usize = 8;
/// Query rows per gemm block.
const QUERY_BLOCK: usize = 256;
/// Training rows per gemm block: a 256 x 2048 f32 distance tile is 2 MiB.
const TRAIN_BLOCK: usize = 2048;

/// The k nearest training rows of each query, nearest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbors {
    pub k: usize,
    /// `indices[q * k + j]`: the training row of query q's (j+1)-th neighbour.
    pub indices: Vec<usize>,
    /// The matching distances (f64, exact for the reported neighbours).
    pub distances: Vec<f64>,
}

impl Neighbors {
    /// The number of queries.
    pub fn len(&self) -> usize {
        self.indices.len() / self.k.max(1)
    }
    /// Whether there are no queries.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
    /// The neighbours of query `q` and their distances.
    pub fn of(&self, q: usize) -> (&[usize], &[f64]) {
        (&self.indices[q * self.k..(q + 1) * self.k], &self.distances[q * self.k..(q + 1) * self.k])
    }
}

fn exact_distance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    match metric {
        Metric::L2 => a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>().sqrt(),
        Metric::L1 => a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).abs()).sum(),
        Metric::Cosine => {
            let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
            for (&x, &y) in a.iter().zip(b) {
                ab += x as f64 * y as f64;
                aa += x as f64 * x as f64;
                bb += y as f64 * y as f64;
            }
            if aa == 0.0 || bb == 0.0 {
                1.0
            } else {
                1.0 - ab / (aa.sqrt() * bb.sqrt())
            }
        }
    }
}

fn unit_rows(m: &Matrix) -> Vec<f32> {
    let mut out = m.data().to_vec();
    for row in out.chunks_exact_mut(m.cols().max(1)) {
        let n = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v = (*v as f64 / n) as f32);
        }
    }
    out
}

/// The `k` nearest rows of `train` for every row of `query`, exact (see the module docs).
pub fn kneighbors(train: &Matrix, query: &Matrix, k: usize, metric: Metric) -> Result<Neighbors> {
    const OP: &str = "kneighbors";
    if train.rows() == 0 {
        return Err(Error::invalid(OP, "the training set is empty"));
    }
    if k == 0 || k > train.rows() {
        return Err(Error::invalid(OP, format!("k = {k} must be between 1 and the number of training samples ({})", train.rows())));
    }
    if train.cols() != query.cols() {
        return Err(Error::invalid(OP, format!("training samples have {} features but queries have {}", train.cols(), query.cols())));
    }
    let (n, nq, d) = (train.rows(), query.rows(), train.cols());
    let kc = (k + RERANK_MARGIN).min(n);
    // Rows the gemm sees: unit rows for cosine, raw rows otherwise.
    let (tr, qr) = match metric {
        Metric::Cosine => (unit_rows(train), unit_rows(query)),
        _ => (train.data().to_vec(), query.data().to_vec()),
    };
    let tnorm: Vec<f32> = tr.chunks_exact(d.max(1)).map(|r| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>() as f32).collect();
    let mut indices = vec![0usize; nq * k];
    let mut distances = vec![0.0f64; nq * k];
    let blocks = indices.par_chunks_mut(QUERY_BLOCK * k).zip(distances.par_chunks_mut(QUERY_BLOCK * k)).enumerate();
    threads::install(|| {
        blocks.for_each(|(b, (out_i, out_d))| {
            let q0 = b * QUERY_BLOCK;
            let qb = out_i.len() / k;
            let qrows = &qr[q0 * d..(q0 + qb) * d];
            let qnorm: Vec<f32> = qrows.chunks_exact(d.max(1)).map(|r| r.iter().map(|&v| v * v).sum()).collect();
            let mut cand_d = vec![f32::INFINITY; qb * kc];
            let mut cand_i = vec![0u32; qb * kc];
            let mut tile = vec![0.0f32; qb * TRAIN_BLOCK];
            for t0 in (0..n).step_by(TRAIN_BLOCK) {
                let tb = TRAIN_BLOCK.min(n - t0);
                let trows = &tr[t0 * d..(t0 + tb) * d];
                match metric {
                    Metric::L2 | Metric::Cosine => {
                        // SAFETY: the operands are in-bounds slices of the stated shapes; `tile`
                        // holds qb x tb with row stride tb and does not overlap them.
                        unsafe {
                            gemm(
                                qb,
                                tb,
                                d,
                                MatMut { ptr: tile.as_mut_ptr(), rs: tb as isize, cs: 1 },
                                false,
                                MatRef { ptr: qrows.as_ptr(), rs: d as isize, cs: 1 },
                                MatRef { ptr: trows.as_ptr(), rs: 1, cs: d as isize },
                                false,
                            )
                        };
                        for (qi, row) in tile.chunks_exact_mut(tb).take(qb).enumerate() {
                            for (j, v) in row.iter_mut().enumerate() {
                                *v = if metric == Metric::L2 { qnorm[qi] + tnorm[t0 + j] - 2.0 * *v } else { 1.0 - *v };
                            }
                        }
                    }
                    Metric::L1 => {
                        for (qi, row) in tile.chunks_exact_mut(tb).take(qb).enumerate() {
                            let a = &qrows[qi * d..(qi + 1) * d];
                            for (j, v) in row.iter_mut().enumerate() {
                                *v = a.iter().zip(&trows[j * d..(j + 1) * d]).map(|(x, y)| (x - y).abs()).sum();
                            }
                        }
                    }
                }
                for qi in 0..qb {
                    let (cd, ci) = (&mut cand_d[qi * kc..(qi + 1) * kc], &mut cand_i[qi * kc..(qi + 1) * kc]);
                    for (j, &v) in tile[qi * tb..(qi + 1) * tb].iter().enumerate() {
                        if v < cd[kc - 1] {
                            let mut p = kc - 1;
                            while p > 0 && cd[p - 1] > v {
                                cd[p] = cd[p - 1];
                                ci[p] = ci[p - 1];
                                p -= 1;
                            }
                            cd[p] = v;
                            ci[p] = (t0 + j) as u32;
                        }
                    }
                }
            }
            for qi in 0..qb {
                let a = query.row(q0 + qi);
                let mut exact: Vec<(f64, usize)> = cand_i[qi * kc..(qi + 1) * kc]
                    .iter()
                    .map(|&i| (exact_distance(metric, a, train.row(i as usize)), i as usize))
                    .collect();
                exact.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                for (j, &(dist, i)) in exact.iter().take(k).enumerate() {
                    out_i[qi * k + j] = i;
                    out_d[qi * k + j] = dist;
                }
            }
        })
    });
    Ok(Neighbors { k, indices, distances })
}

fn weights_of(weights: Weights, dists: &[f64]) -> Vec<f64> {
    match weights {
        Weights::Uniform => vec![1.0; dists.len()],
        Weights::Distance if dists.contains(&0.0) => dists.iter().map(|&d| if d == 0.0 { 1.0 } else { 0.0 }).collect(),
        Weights::Distance => dists.iter().map(|&d| 1.0 / d).collect(),
    }
}

/// The class of each query by (weighted) majority vote of its neighbours' `labels`; a tie goes
/// to the class of the nearest neighbour among the tied classes.
pub fn classify(neighbors: &Neighbors, labels: &[usize], num_classes: usize, weights: Weights) -> Result<Vec<usize>> {
    if let Some(&bad) = labels.iter().find(|&&l| l >= num_classes) {
        return Err(Error::invalid("knn classify", format!("label {bad} is out of range for {num_classes} classes")));
    }
    let mut votes = vec![0.0f64; num_classes];
    let mut out = Vec::with_capacity(neighbors.len());
    for q in 0..neighbors.len() {
        let (idx, dist) = neighbors.of(q);
        let classes: Vec<usize> = idx
            .iter()
            .map(|&i| labels.get(i).copied().ok_or(i))
            .collect::<std::result::Result<_, _>>()
            .map_err(|i| Error::invalid("knn classify", format!("neighbour {i} has no label: {} labels given", labels.len())))?;
        votes.iter_mut().for_each(|v| *v = 0.0);
        for (&c, w) in classes.iter().zip(weights_of(weights, dist)) {
            votes[c] += w;
        }
        let best = votes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Neighbours are nearest first, so the first one in a tied class decides.
        let winner = classes.iter().copied().find(|&c| votes[c] == best).unwrap_or(classes[0]);
        out.push(winner);
    }
    Ok(out)
}

/// The (weighted) mean of the neighbours' `targets` for each query.
pub fn regress(neighbors: &Neighbors, targets: &[f64], weights: Weights) -> Result<Vec<f64>> {
    (0..neighbors.len())
        .map(|q| {
            let (idx, dist) = neighbors.of(q);
            let w = weights_of(weights, dist);
            let mut num = 0.0;
            for (&i, wi) in idx.iter().zip(&w) {
                let t = targets.get(i).ok_or_else(|| {
                    Error::invalid("knn regress", format!("neighbour {i} has no target: {} targets given", targets.len()))
                })?;
                num += wi * t;
            }
            Ok(num / w.iter().sum::<f64>())
        })
        .collect()
}

/// `matrix[truth][predicted]` counts.
pub fn confusion_matrix(truth: &[usize], predicted: &[usize], num_classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; num_classes]; num_classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        if t < num_classes && p < num_classes {
            m[t][p] += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(train: &Matrix, query: &Matrix, k: usize, metric: Metric) -> Vec<usize> {
        (0..query.rows())
            .flat_map(|q| {
                let mut d: Vec<(f64, usize)> = (0..train.rows()).map(|i| (exact_distance(metric, query.row(q), train.row(i)), i)).collect();
                d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                d.into_iter().take(k).map(|p| p.1).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_for_every_metric() {
        let mut rng = shendu_core::Rng::new(3);
        let (n, nq, d) = (2500, 300, 13);
        let train = Matrix::new((0..n * d).map(|_| rng.normal() as f32).collect(), n, d).unwrap();
        let query = Matrix::new((0..nq * d).map(|_| rng.normal() as f32).collect(), nq, d).unwrap();
        for metric in [Metric::L2, Metric::L1, Metric::Cosine] {
            let got = kneighbors(&train, &query, 5, metric).unwrap();
            assert_eq!(got.indices, brute(&train, &query, 5, metric), "{metric:?}");
        }
    }

    #[test]
    fn votes_ties_and_weights() {
        let train = Matrix::new(vec![0.0, 1.0, 3.0, 10.0], 4, 1).unwrap();
        let labels = [0, 1, 1, 0];
        let q = Matrix::new(vec![0.9, 2.0], 2, 1).unwrap();
        let nb = kneighbors(&train, &q, 2, Metric::L2).unwrap();
        assert_eq!(nb.indices, vec![1, 0, 1, 2]);
        // Query 0.9: classes 1 (d 0.1) and 0 (d 0.9) tie; the nearest (class 1) wins.
        assert_eq!(classify(&nb, &labels, 2, Weights::Uniform).unwrap(), vec![1, 1]);
        let nb3 = kneighbors(&train, &Matrix::new(vec![0.2], 1, 1).unwrap(), 3, Metric::L2).unwrap();
        assert_eq!(classify(&nb3, &labels, 2, Weights::Uniform).unwrap(), vec![1]);
        assert_eq!(classify(&nb3, &labels, 2, Weights::Distance).unwrap(), vec![0]);
        let r = regress(&nb, &[0.0, 1.0, 3.0, 10.0], Weights::Uniform).unwrap();
        assert_eq!(r, vec![0.5, 2.0]);
        let exact = kneighbors(&train, &Matrix::new(vec![3.0], 1, 1).unwrap(), 2, Metric::L2).unwrap();
        assert_eq!(regress(&exact, &[0.0, 1.0, 3.0, 10.0], Weights::Distance).unwrap(), vec![3.0]);
        assert!(kneighbors(&train, &q, 5, Metric::L2).unwrap_err().to_string().contains("k = 5"));
    }
}
