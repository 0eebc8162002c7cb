//! Procedures of the example programs in `examples/`, here so integration tests can call them.

pub mod finetune;
pub mod graph_mode;
pub mod linear_regression;
pub mod two_layer_net;

/// The font plotters draws text with, shipped in the repository (assets/fonts, Bitstream Vera
/// license) so charts look the same everywhere and need no system fonts.
static FONT: &[u8] = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font as plotters' "sans-serif" (idempotent).
pub fn register_font() -> Result<(), Box<dyn std::error::Error>> {
    plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT)
        .map_err(|_| "the bundled font does not parse")?;
    Ok(())
}
