//! The report's charts as PNG images: mail clients show no SVG, and a Lambda has no system
//! fonts, so `plotters` draws on a bitmap with the font embedded here (DejaVu Sans, under the
//! Bitstream Vera licence in `fonts/`), and `png` encodes it.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::model::{DayPoint, Report};
use crate::ReportError;

const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

const TREATED: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
const HOLDOUT: RGBColor = RGBColor(0xd9, 0x6c, 0x1e);
const BAR: RGBColor = RGBColor(0x3a, 0x8f, 0x6e);

/// Width and height of every chart, in pixels: drawn at twice the 640 px it is shown at on a
/// desktop, so it stays sharp there and on a phone (which shows it narrower).
pub const SIZE: (u32, u32) = (1280, 640);

/// Makes the embedded font the one `plotters` draws `sans-serif` with, for every backend. Called
/// before any chart is drawn (also by the CLI's SVG charts, which measure text with it).
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font("sans-serif", style, FONT).is_err() {
                panic!("the embedded font does not parse");
            }
        }
    });
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult = Result<(), String>;

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

/// Draws with `draw` on a white bitmap and encodes it as PNG.
fn draw_png(
    chart: &'static str,
    draw: impl FnOnce(&Area) -> DrawResult,
) -> Result<Vec<u8>, ReportError> {
    register_fonts();
    let fail = |reason: String| ReportError::Chart { chart, reason };
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| fail(x.to_string()))?;
        draw(&root).map_err(fail)?;
        root.present().map_err(|x| fail(x.to_string()))?;
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        let mut writer = encoder.write_header().map_err(|x| fail(x.to_string()))?;
        writer
            .write_image_data(&rgb)
            .map_err(|x| fail(x.to_string()))?;
    }
    Ok(out)
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

/// Caption and label sizes in the 1280-pixel drawing: a phone shows it about 350 pixels wide, so
/// labels come out near 11 pixels.
const CAPTION: u32 = 46;
const LABEL: u32 = 38;

/// Cumulative reactivation rate per day, treated against holdout.
pub fn reactivation(r: &Report) -> Result<Vec<u8>, ReportError> {
    draw_png("reactivation over time", |root| {
        let pct = |a: i64, b: i64| {
            if b > 0 {
                a as f64 * 100.0 / b as f64
            } else {
                0.0
            }
        };
        let curve = |came_back: fn(&DayPoint) -> (i64, i64)| -> Vec<(f64, f64)> {
            r.series
                .iter()
                .map(came_back)
                .enumerate()
                .map(|(i, (back, enrolled))| (i as f64, pct(back, enrolled)))
                .collect()
        };
        let treated = curve(|p| (p.treated_reactivated, p.treated_enrolled));
        let holdout = curve(|p| (p.holdout_reactivated, p.holdout_enrolled));
        let ymax = treated
            .iter()
            .chain(&holdout)
            .map(|(_, y)| *y)
            .fold(5.0f64, f64::max)
            * 1.15;
        let xmax = (r.series.len().max(2) - 1) as f64;
        let days = r.series.clone();
        // The title and the key above the plot: a key inside it would hide part of a line.
        let (head, body) = root.split_vertically(120);
        head.draw(&Text::new(
            "Came back, cumulative (% of enrolled)",
            (24, 10),
            ("sans-serif", CAPTION),
        ))
        .map_err(e)?;
        for (i, (name, colour)) in [("treated (emailed)", TREATED), ("holdout", HOLDOUT)]
            .into_iter()
            .enumerate()
        {
            let x = 24 + 420 * i as i32;
            head.draw(&PathElement::new(
                vec![(x, 92), (x + 48, 92)],
                colour.stroke_width(6),
            ))
            .map_err(e)?;
            head.draw(&Text::new(name, (x + 60, 72), ("sans-serif", LABEL)))
                .map_err(e)?;
        }
        let mut chart = ChartBuilder::on(&body)
            .margin(24)
            .x_label_area_size(60)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_labels(5)
            .label_style(("sans-serif", LABEL))
            .x_label_formatter(&|x| {
                days.get(x.round() as usize)
                    .map_or_else(String::new, |p| p.day.format("%b %d").to_string())
            })
            .y_label_formatter(&|y| format!("{y:.0}%"))
            .draw()
            .map_err(e)?;
        for (points, colour) in [(treated, TREATED), (holdout, HOLDOUT)] {
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(4)))
                .map_err(e)?;
        }
        Ok(())
    })
}

/// Lift over the holdout per variant, with 95% intervals, in percentage points.
pub fn lift(r: &Report) -> Result<Vec<u8>, ReportError> {
    let variants: Vec<(String, f64, f64, f64)> = r
        .variants
        .iter()
        .filter_map(|v| {
            v.lift.map(|l| {
                (
                    v.variant.clone(),
                    l.value * 100.0,
                    l.low * 100.0,
                    l.high * 100.0,
                )
            })
        })
        .collect();
    draw_png("lift per variant", |root| {
        let lo = variants.iter().map(|v| v.2).fold(0.0f64, f64::min);
        let hi = variants.iter().map(|v| v.3).fold(1.0f64, f64::max);
        let pad = (hi - lo) * 0.1 + 0.5;
        let n = variants.len().max(1);
        let names: Vec<String> = variants.iter().map(|v| v.0.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Lift over the holdout, points (95% CI)",
                ("sans-serif", CAPTION),
            )
            .margin(24)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (lo - pad)..(hi + pad))
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .label_style(("sans-serif", LABEL))
            .x_label_formatter(&|x| category_label(&names, *x))
            .y_label_formatter(&|y| format!("{y:+.0}"))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
                BLACK.mix(0.5).stroke_width(2),
            )))
            .map_err(e)?;
        for (i, (_, value, low, high)) in variants.iter().enumerate() {
            let x = i as f64;
            let style = TREATED.stroke_width(4);
            chart
                .draw_series([
                    PathElement::new(vec![(x, *low), (x, *high)], style),
                    PathElement::new(vec![(x - 0.08, *low), (x + 0.08, *low)], style),
                    PathElement::new(vec![(x - 0.08, *high), (x + 0.08, *high)], style),
                ])
                .map_err(e)?;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (x, *value),
                    10,
                    TREATED.filled(),
                )))
                .map_err(e)?;
        }
        Ok(())
    })
}

/// A bar chart of labelled counts, one bar a row with its label to its left (labels side by side
/// under vertical bars run into each other at a phone's width).
pub fn bars(
    chart: &'static str,
    title: &str,
    labels: &[String],
    values: &[f64],
) -> Result<Vec<u8>, ReportError> {
    draw_png(chart, |root| {
        let n = labels.len().max(1);
        let top = values.iter().copied().fold(1.0f64, f64::max) * 1.15;
        // The first label at the top, as the table under the chart lists them.
        let row = |i: usize| (n - 1 - i) as f64;
        let label = |y: f64| category_label(labels, (n - 1) as f64 - y);
        let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let mut c = ChartBuilder::on(root)
            .caption(title, ("sans-serif", CAPTION))
            .margin(24)
            .x_label_area_size(60)
            .y_label_area_size((widest as u32 * LABEL * 6 / 10 + 40).clamp(100, 520))
            .build_cartesian_2d(0f64..top, -0.5f64..(n as f64 - 0.5))
            .map_err(e)?;
        c.configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .label_style(("sans-serif", LABEL))
            .y_label_formatter(&|y| label(*y))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(e)?;
        c.draw_series(values.iter().enumerate().map(|(i, v)| {
            let y = row(i);
            Rectangle::new([(0.0, y - 0.35), (*v, y + 0.35)], BAR.filled())
        }))
        .map_err(e)?;
        Ok(())
    })
}
