//! `shendu plot stats LOG`: the `--log-stats` lines of a metrics log as one PNG, gradient norm
//! and activation standard deviation per layer over the steps (log scale), coloured from the
//! first layer (blue) to the last (red): vanishing gradients show as a fan of blue lines far
//! below the red ones.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use plotters::prelude::*;

use super::{CliError, CliResult};
use crate::train::layer_stats::{LayerStats, StatsRecord};

/// `shendu plot ...`.
#[derive(Args, Debug)]
pub struct PlotArgs {
    #[command(subcommand)]
    pub what: PlotWhat,
}

/// What to draw.
#[derive(Subcommand, Debug)]
pub enum PlotWhat {
    /// Per-layer gradient norm and activation std over steps, from `train --log-stats` lines.
    Stats(StatsArgs),
}

/// Flags of `shendu plot stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// A metrics.jsonl written by `shendu train --log-stats N`.
    pub log: PathBuf,
    /// The PNG to write [default: stats.png beside the log].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: PlotArgs) -> CliResult<()> {
    match args.what {
        PlotWhat::Stats(a) => stats(&a),
    }
}

fn stats(args: &StatsArgs) -> CliResult<()> {
    let text = std::fs::read_to_string(&args.log).map_err(|e| CliError::bad(format!("{}: cannot read: {e}", args.log.display())))?;
    let records: Vec<StatsRecord> =
        text.lines().filter_map(|l| serde_json::from_str::<StatsRecord>(l).ok()).filter(|r| r.kind == "stats").collect();
    if records.is_empty() {
        return Err(CliError::bad(format!("{}: no statistics lines; train with --log-stats N to write them", args.log.display())));
    }
    let out = args.out.clone().unwrap_or_else(|| args.log.parent().unwrap_or(Path::new(".")).join("stats.png"));
    draw(&out, &records).map_err(|e| CliError::internal(format!("{}: cannot draw: {e}", out.display())))?;
    println!("wrote {} ({} steps, {} layers with parameters)", out.display(), records.len(), layers_with_params(&records).len());
    Ok(())
}

/// The layers that have parameters, in network order.
fn layers_with_params(records: &[StatsRecord]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for l in records.iter().flat_map(|r| &r.layers) {
        if l.grad_norm.is_some() && !names.contains(&l.layer) {
            names.push(l.layer.clone());
        }
    }
    names
}

/// Blue for the first layer through red for the last.
fn depth_colour(i: usize, n: usize) -> RGBColor {
    let t = if n > 1 { i as f64 / (n - 1) as f64 } else { 0.0 };
    RGBColor((40.0 + 200.0 * t) as u8, (60.0 * (1.0 - (2.0 * t - 1.0).abs())) as u8, (240.0 - 200.0 * t) as u8)
}

type Panel<'a> =
    ChartContext<'a, BitMapBackend<'a>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::combinators::LogCoord<f64>>>;

fn draw(path: &Path, records: &[StatsRecord]) -> Result<(), Box<dyn std::error::Error>> {
    crate::examples_support::register_font()?;
    let layers = layers_with_params(records);
    let root = BitMapBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled("shendu: per-layer statistics (blue = first layer, red = last)", ("sans-serif", 20))?;
    let (left, right) = root.split_horizontally(600);
    let steps = records.iter().map(|r| r.step).max().unwrap_or(1) as f64;
    let pick = |f: fn(&LayerStats) -> Option<f64>| -> Vec<Vec<(f64, f64)>> {
        layers
            .iter()
            .map(|name| {
                records
                    .iter()
                    .filter_map(|r| r.layers.iter().find(|l| &l.layer == name).and_then(f).map(|v| (r.step as f64, v)))
                    .filter(|(_, v)| v.is_finite() && *v > 0.0)
                    .collect()
            })
            .collect()
    };
    let grads = pick(|l| l.grad_norm);
    let stds = pick(|l| l.act_std);
    for (area, title, lines) in [(&left, "gradient norm (weights)", grads), (&right, "activation std (layer output)", stds)] {
        let (lo, hi) = lines.iter().flatten().fold((f64::INFINITY, 0.0f64), |(lo, hi), (_, v)| (lo.min(*v), hi.max(*v)));
        let (lo, hi) = if lo.is_finite() && hi > 0.0 { (lo / 2.0, hi * 2.0) } else { (1e-6, 1.0) };
        let mut chart: Panel = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(65)
            .build_cartesian_2d(0.0..steps * 1.02, (lo..hi).log_scale())?;
        chart.configure_mesh().x_desc("step").y_label_formatter(&|v| format!("{v:.0e}")).draw()?;
        let n = lines.len();
        for (i, points) in lines.into_iter().enumerate() {
            let colour = depth_colour(i, n);
            let s = chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
            // Label the first and last layers and a few between; 20 labels would hide the lines.
            if i == 0 || i + 1 == n || (n <= 8) || i % (n / 4).max(1) == 0 {
                s.label(layers[i].clone()).legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
