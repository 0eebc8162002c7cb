//! The notebook's gradient descent by hand: the three variants (sweep: one pass over the samples
//! updating after each; sgd: one random sample per iteration; batch: one update with the mean
//! gradient) on its five samples, alpha 0.01, stopping once the loss sum (y - theta·x)^2 / 2 falls
//! below 60. Prints each result in the notebook's format and draws the loss per iteration of the
//! three into `gradient_descent.png`.
//!
//! Why sweep needs the fewest iterations: one of its iterations is m = 5 updates with a full step
//! each, while a batch iteration is one step along the mean gradient (1/m of the summed one) and an
//! sgd iteration one single-sample step; see `shendu_ml::gd` for the measured counts.
//!
//! Run with `cargo run --release --example gradient_descent`.

use plotters::prelude::*;
use shendu_ml::gd::{self, GdConfig, GdResult, Method, NOTEBOOK_X, NOTEBOOK_Y};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let x = NOTEBOOK_X.concat();
    let mut runs: Vec<(Method, GdResult)> = Vec::new();
    for method in [Method::Sweep, Method::Sgd, Method::Batch] {
        let r = gd::fit(&x, 3, &NOTEBOOK_Y, &GdConfig { method, lr: 0.01, threshold: 60.0, max_iter: 100_000, seed: 0 })?;
        println!("== {}", method.name());
        println!("{}", r.notebook_output());
        runs.push((method, r));
    }
    let path = "gradient_descent.png";
    shendu::examples_support::register_font()?;
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_it = runs.iter().map(|(_, r)| r.iterations).max().unwrap_or(1) as f64;
    let max_loss = runs.iter().flat_map(|(_, r)| r.losses.iter().copied()).fold(60.0f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption("gradient descent on the notebook's data: loss per iteration (alpha 0.01)", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..max_it * 1.2).log_scale(), (40f64..max_loss * 1.5).log_scale())?;
    chart.configure_mesh().x_desc("iteration").y_desc("loss sum (y - theta x)^2 / 2").draw()?;
    for ((method, r), colour) in runs.iter().zip([RED, BLUE, GREEN]) {
        let points: Vec<(f64, f64)> = r.losses.iter().enumerate().map(|(i, &l)| ((i + 1) as f64, l)).collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(format!("{} ({} iterations)", method.name(), r.iterations))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .draw_series(LineSeries::new([(1.0, 60.0), (max_it * 1.2, 60.0)], BLACK.mix(0.5)))?
        .label("threshold 60")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.5)));
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    println!("chart: {path}");
    Ok(())
}
