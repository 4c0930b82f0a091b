//! SVG charts drawn by `plotters` for the CLI's own pages (the backtest, the uplift model). The
//! campaign report's page, with PNG charts that mail clients show, is the `report` crate's.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{CliError, CliResult};

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), String>;

const TREATED: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
const HOLDOUT: RGBColor = RGBColor(0xd9, 0x6c, 0x1e);
const BAR: RGBColor = RGBColor(0x3a, 0x8f, 0x6e);

fn draw_svg(
    chart: &'static str,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> DrawResult,
) -> CliResult<String> {
    // The font text is measured with (features are shared in the workspace).
    report::charts::register_fonts();
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        let fail = |reason: String| CliError::Chart { chart, reason };
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(buf)
}

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

/// The label of the category at `x` on an axis of categories `0, 1, …`: only at whole numbers.
fn category_label(names: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 0.01 && i >= 0.0 {
        names.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Lines over a shared x axis (e.g. the Qini curve against the random line), with a legend.
pub fn line_chart(
    chart: &'static str,
    title: &str,
    series: &[(Vec<(f64, f64)>, &str)],
    x_desc: &str,
    y_desc: &str,
) -> CliResult<String> {
    draw_svg(chart, (760, 360), |root| {
        let points = || series.iter().flat_map(|s| s.0.iter());
        let (xmin, xmax) =
            points().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (ymin, ymax) = points().fold((0.0f64, 0.0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
        let pad = ((ymax - ymin) * 0.1).max(1e-9);
        let (xmin, xmax) = if xmin < xmax {
            (xmin, xmax)
        } else {
            (0.0, 1.0)
        };
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(xmin..xmax, (ymin - pad)..(ymax + pad))
            .map_err(e)?;
        c.configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(e)?;
        for (k, (points, name)) in series.iter().enumerate() {
            let colour = [TREATED, HOLDOUT, BAR][k % 3];
            c.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(e)?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(e)
    })
}

/// A bar chart of labelled counts.
pub fn bar_chart(
    chart: &'static str,
    title: &str,
    labels: &[String],
    values: &[f64],
    y_desc: &str,
) -> CliResult<String> {
    bars(chart, title, labels, &[(values, "", BAR)], y_desc)
}

/// Two series of bars side by side per label, with a legend (e.g. predicted against observed).
pub fn paired_bar_chart(
    chart: &'static str,
    title: &str,
    labels: &[String],
    first: (&[f64], &str),
    second: (&[f64], &str),
    y_desc: &str,
) -> CliResult<String> {
    bars(
        chart,
        title,
        labels,
        &[(first.0, first.1, HOLDOUT), (second.0, second.1, TREATED)],
        y_desc,
    )
}

fn bars(
    chart: &'static str,
    title: &str,
    labels: &[String],
    series: &[(&[f64], &str, RGBColor)],
    y_desc: &str,
) -> CliResult<String> {
    draw_svg(chart, (760, 340), |root| {
        let n = labels.len().max(1);
        let top = series
            .iter()
            .flat_map(|s| s.0.iter().copied())
            .fold(1.0f64, f64::max)
            * 1.15;
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)
            .map_err(e)?;
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| category_label(labels, *x))
            .y_desc(y_desc)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(e)?;
        let width = 0.7 / series.len().max(1) as f64;
        for (k, (values, name, colour)) in series.iter().enumerate() {
            let colour = *colour;
            let drawn = c
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    let x = i as f64 - 0.35 + k as f64 * width;
                    Rectangle::new([(x, 0.0), (x + width, *v)], colour.filled())
                }))
                .map_err(e)?;
            if !name.is_empty() {
                drawn.label(*name).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
            }
        }
        if series.iter().any(|s| !s.1.is_empty()) {
            c.configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(e)?;
        }
        Ok(())
    })
}
