//! The comparison's figures: test accuracy and training loss against epochs, one SVG per task
//! and measure, drawn with `plotters`.

use std::path::Path;

use plotters::prelude::*;

use crate::Res;

/// A line plot of `series` (name, points of (epochs, value)) to `path`, with a legend; `log`: a
/// logarithmic y axis. The preset's curves are drawn thick.
pub fn plot(path: &Path, title: &str, series: &[(String, Vec<(f64, f64)>)], log: bool) -> Res<()> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let points = || series.iter().flat_map(|s| s.1.iter());
    let x_max = points().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = points()
        .map(|p| p.1)
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = match (lo.is_finite(), log) {
        (false, _) => (0.0, 1.0),
        (true, true) => (lo * 0.8, hi * 1.25),
        (true, false) => (
            lo - 0.05 * (hi - lo).max(1.0),
            hi + 0.05 * (hi - lo).max(1.0),
        ),
    };
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    let y_desc = if log {
        "training loss"
    } else {
        "test accuracy (%)"
    };
    // The legend where the curves are not: below rising accuracy, above falling loss.
    let legend = if log {
        SeriesLabelPosition::UpperRight
    } else {
        SeriesLabelPosition::LowerRight
    };
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("epochs")
                .y_desc(y_desc)
                .draw()?;
            for (k, (name, pts)) in series.iter().enumerate() {
                let width = if name.starts_with("preset (") { 4 } else { 1 };
                let color = Palette99::pick(k).to_rgba();
                chart
                    .draw_series(LineSeries::new(
                        pts.iter().copied().filter(|p| p.1.is_finite()),
                        color.stroke_width(width),
                    ))?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(legend)
                .draw()?;
        }};
    }
    if log {
        draw!(builder.build_cartesian_2d(0.0..x_max, (lo..hi).log_scale())?);
    } else {
        draw!(builder.build_cartesian_2d(0.0..x_max, lo..hi)?);
    }
    root.present()?;
    Ok(())
}
