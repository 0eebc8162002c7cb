//! The training chart: loss (train and test) and accuracy (train and test) per epoch, two panels
//! in one PNG, redrawn after every epoch.

use std::path::Path;

use plotters::prelude::*;

use super::metrics::EpochRecord;
use crate::cli::{CliError, CliResult};

/// Draws `records` into `path` (written atomically).
pub fn draw(path: &Path, title: &str, records: &[EpochRecord]) -> CliResult<()> {
    let tmp = path.with_extension("tmp.png");
    draw_to(&tmp, title, records).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::internal(format!("{}: cannot draw the chart: {e}", path.display()))
    })?;
    std::fs::rename(&tmp, path).map_err(|e| CliError::internal(format!("{}: cannot write: {e}", path.display())))
}

fn draw_to(path: &Path, title: &str, records: &[EpochRecord]) -> Result<(), Box<dyn std::error::Error>> {
    crate::examples_support::register_font()?;
    let root = BitMapBackend::new(path, (1000, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (left, right) = root.split_horizontally(500);
    let epochs = records.iter().map(|r| r.epoch).max().unwrap_or(1).max(1) as f64;
    let xs = 0.5..epochs + 0.5;

    let max_loss = records.iter().flat_map(|r| [r.train_loss, r.test_loss]).filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1e-3);
    let mut loss = ChartBuilder::on(&left)
        .caption("loss", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(xs.clone(), 0.0..max_loss * 1.05)?;
    loss.configure_mesh().x_desc("epoch").draw()?;
    series(&mut loss, records, |r| r.train_loss, RED, "train")?;
    series(&mut loss, records, |r| r.test_loss, BLUE, "test")?;
    loss.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;

    let min_acc = records.iter().flat_map(|r| [r.train_accuracy, r.test_accuracy]).fold(1.0f64, f64::min);
    let lo = (100.0 * min_acc - 2.0).clamp(0.0, 99.0);
    let mut acc = ChartBuilder::on(&right)
        .caption("accuracy %", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(xs, lo..100.0)?;
    acc.configure_mesh().x_desc("epoch").draw()?;
    series(&mut acc, records, |r| 100.0 * r.train_accuracy, RED, "train")?;
    series(&mut acc, records, |r| 100.0 * r.test_accuracy, BLUE, "test")?;
    acc.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

type Chart<'a> =
    ChartContext<'a, BitMapBackend<'a>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

fn series(
    chart: &mut Chart<'_>,
    records: &[EpochRecord],
    y: impl Fn(&EpochRecord) -> f64,
    color: RGBColor,
    label: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let points: Vec<(f64, f64)> = records.iter().map(|r| (r.epoch as f64, y(r))).filter(|(_, v)| v.is_finite()).collect();
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    Ok(())
}
