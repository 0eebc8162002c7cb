//! `shendu kmeans`: k-means (k-means++ seeding, Lloyd or mini-batch) on a numeric CSV file, with a
//! PNG of the points, the centroids and their Voronoi cells for 2-D data.

use std::path::{Path, PathBuf};

use clap::Args;
use plotters::prelude::*;
use serde_json::json;
use shendu_ml::kmeans::{self, KMeansConfig, KMeansResult};
use shendu_ml::Matrix;

use super::ml::{ml_err, print_json, read_table};
use super::{CliError, CliResult};

/// Flags of `shendu kmeans`.
#[derive(Args, Debug)]
pub struct KMeansArgs {
    /// Numeric CSV: one sample per row, every column a feature (a header row is allowed).
    #[arg(value_name = "FILE.csv")]
    pub file: PathBuf,
    /// Number of clusters.
    #[arg(short, long, value_name = "K")]
    pub k: usize,
    /// Seedings to run; the lowest inertia is kept.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub n_init: usize,
    /// Most Lloyd iterations (mini-batch: passes over the data).
    #[arg(long, value_name = "N", default_value_t = 300)]
    pub max_iter: usize,
    /// Tolerance on the squared centre shift, relative to the mean feature variance.
    #[arg(long, value_name = "X", default_value_t = 1e-4, allow_negative_numbers = true)]
    pub tol: f64,
    /// Mini-batch k-means with batches of B samples.
    #[arg(long, value_name = "B")]
    pub mini_batch: Option<usize>,
    /// Seed of the seeding (and the mini-batches).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Where to draw the picture of 2-D data [default: FILE.kmeans.png beside the CSV].
    #[arg(long, value_name = "FILE.png")]
    pub png: Option<PathBuf>,
    /// Print one JSON object instead.
    #[arg(long)]
    pub json: bool,
}

/// Clusters as the flags say.
pub fn run(args: KMeansArgs) -> CliResult<()> {
    let t = read_table(&args.file)?;
    let x = Matrix::new(t.data.iter().map(|&v| v as f32).collect(), t.rows, t.cols).map_err(ml_err)?;
    if args.k == 0 || args.k > x.rows() {
        return Err(CliError::bad(format!("-k {}: must be between 1 and the number of samples ({})", args.k, x.rows())));
    }
    if args.mini_batch == Some(0) || args.n_init == 0 || args.max_iter == 0 {
        return Err(CliError::bad("--mini-batch, --n-init and --max-iter must be at least 1"));
    }
    let config = KMeansConfig {
        k: args.k,
        n_init: args.n_init,
        max_iter: args.max_iter,
        tol: args.tol,
        seed: args.seed,
        mini_batch: args.mini_batch,
    };
    let r = kmeans::fit(&x, &config).map_err(ml_err)?;
    let png = if x.cols() == 2 {
        let path = args.png.clone().unwrap_or_else(|| args.file.with_extension("kmeans.png"));
        draw(&path, &x, &r).map_err(|e| CliError::internal(format!("{}: cannot draw: {e}", path.display())))?;
        Some(path)
    } else {
        None
    };
    let mut sizes = vec![0usize; args.k];
    r.labels.iter().for_each(|&l| sizes[l] += 1);
    let centroids: Vec<Vec<f32>> = (0..args.k).map(|j| r.centroids.row(j).to_vec()).collect();
    if args.json {
        return print_json(&json!({
            "k": args.k, "inertia": r.inertia, "iterations": r.iterations, "centroids": centroids, "sizes": sizes,
            "labels": r.labels, "png": png.as_ref().map(|p| p.display().to_string()),
        }));
    }
    println!("k-means, k = {}: inertia {:.6} after {} iterations", args.k, r.inertia, r.iterations);
    for (j, c) in centroids.iter().enumerate() {
        let shown: Vec<String> = c.iter().take(8).map(|v| format!("{v:.4}")).collect();
        println!("  cluster {j}: {} samples, centroid [{}{}]", sizes[j], shown.join(", "), if c.len() > 8 { ", ..." } else { "" });
    }
    if let Some(p) = png {
        println!("picture: {}", p.display());
    }
    Ok(())
}

/// Points coloured by cluster on their Voronoi cells (shaded), centroids as black crosses.
fn draw(path: &Path, x: &Matrix, r: &KMeansResult) -> Result<(), Box<dyn std::error::Error>> {
    crate::examples_support::register_font()?;
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..x.rows() {
        let p = x.row(i);
        (x0, x1, y0, y1) = (x0.min(p[0] as f64), x1.max(p[0] as f64), y0.min(p[1] as f64), y1.max(p[1] as f64));
    }
    let (mx, my) = (((x1 - x0) * 0.05).max(1e-6), ((y1 - y0) * 0.05).max(1e-6));
    let (x0, x1, y0, y1) = (x0 - mx, x1 + mx, y0 - my, y1 + my);
    let root = BitMapBackend::new(path, (800, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("k-means, k = {}, inertia {:.4}", r.centroids.rows(), r.inertia), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart.configure_mesh().draw()?;
    let colour = |j: usize| Palette99::pick(j);
    let nearest = |px: f64, py: f64| -> usize {
        (0..r.centroids.rows())
            .map(|j| {
                let c = r.centroids.row(j);
                (j, (px - c[0] as f64).powi(2) + (py - c[1] as f64).powi(2))
            })
            .fold((0, f64::INFINITY), |b, (j, d)| if d < b.1 { (j, d) } else { b })
            .0
    };
    const GRID: usize = 200;
    let (dx, dy) = ((x1 - x0) / GRID as f64, (y1 - y0) / GRID as f64);
    chart.draw_series((0..GRID * GRID).map(|g| {
        let (gx, gy) = (x0 + (g % GRID) as f64 * dx, y0 + (g / GRID) as f64 * dy);
        let j = nearest(gx + dx / 2.0, gy + dy / 2.0);
        Rectangle::new([(gx, gy), (gx + dx, gy + dy)], colour(j).mix(0.18).filled())
    }))?;
    chart.draw_series((0..x.rows()).map(|i| Circle::new((x.row(i)[0] as f64, x.row(i)[1] as f64), 3, colour(r.labels[i]).filled())))?;
    chart.draw_series(
        (0..r.centroids.rows()).map(|j| Cross::new((r.centroids.row(j)[0] as f64, r.centroids.row(j)[1] as f64), 9, BLACK.stroke_width(3))),
    )?;
    root.present()?;
    Ok(())
}
