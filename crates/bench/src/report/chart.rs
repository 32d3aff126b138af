//! `results.svg`: a grouped bar chart of requests/s, one group per case, one bar per target,
//! written by hand (no plotting crate).

use std::fmt::Write as _;

use super::Report;
use crate::target::Target;

/// Canvas size and margins, px.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 124.0;
const BOTTOM: f64 = 72.0;
/// Horizontal gridlines (at most, plus zero).
const TICKS: usize = 5;
/// Share of a group's width its bars take.
const GROUP_FILL: f64 = 0.8;

/// The colour of a target's bars.
fn colour(target: Target) -> &'static str {
    match target {
        Target::Redis => "#d62728",
        Target::Twemproxy => "#7f7f7f",
        Target::ProxyRedis => "#1f77b4",
        Target::ProxyRedisWarn => "#aec7e8",
        Target::ProxyOurs => "#17becf",
        Target::Server => "#2ca02c",
        Target::ServerWarn => "#98df8a",
    }
}

/// A round step for about `ticks` gridlines up to `max` (1, 2, 2.5 or 5 times a power of ten).
pub fn nice_step(max: f64, ticks: usize) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|step| *step >= raw).unwrap_or(10.0 * magnitude)
}

/// `1500000` -> `1.5M`, `712345` -> `712k`, `950` -> `950`.
pub fn compact(value: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if value >= 1e6 {
        format!("{}M", trim(format!("{:.2}", value / 1e6)))
    } else if value >= 1e3 {
        format!("{}k", trim(format!("{:.0}", value / 1e3)))
    } else {
        format!("{value:.0}")
    }
}

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The chart.
pub fn svg(report: &Report) -> String {
    let targets = report.grid.targets();
    let values: Vec<Vec<Option<f64>>> = (0..report.cases.len())
        .map(|c| targets.iter().map(|&t| report.grid.summary(c, t).map(|s| s.rps)).collect())
        .collect();
    let max = values.iter().flatten().flatten().copied().fold(0.0, f64::max);
    let step = nice_step(max, TICKS);
    let top_value = (max / step).ceil().max(1.0) * step;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = |v: f64| TOP + plot_h * (1.0 - v / top_value);

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(out, r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##);
    let title = format!("Requests per second (median of {})", super::plural(report.grid.reps(), "repetition"));
    let _ = writeln!(
        out,
        r#"<text x="{}" y="26" font-size="18" font-weight="bold" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(&title)
    );
    let subtitles = [
        format!("redis-benchmark {}", report.load_settings),
        format!("{} cores, {}; {}", report.machine.cores, report.machine.cpu_model, report.machine.date),
    ];
    for (line, text) in subtitles.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#555555">{}</text>"##,
            WIDTH / 2.0,
            46 + 16 * line,
            escape(text)
        );
    }

    // Legend: one swatch per target, spread over the plot's width.
    let slot = plot_w / targets.len().max(1) as f64;
    for (i, &target) in targets.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        let _ = writeln!(
            out,
            r#"<rect x="{x:.1}" y="86" width="14" height="14" fill="{}"/><text x="{:.1}" y="98" font-size="13">{}</text>"#,
            colour(target),
            x + 20.0,
            escape(target.label())
        );
    }

    // Gridlines and the y axis's labels.
    let mut v = 0.0;
    while v <= top_value + step / 2.0 {
        let gy = y(v);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="{}" stroke-width="1"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            if v == 0.0 { "#333333" } else { "#dddddd" },
            LEFT - 8.0,
            gy + 4.0,
            compact(v)
        );
        v += step;
    }
    let _ = writeln!(
        out,
        r#"<text transform="translate(22 {:.1}) rotate(-90)" font-size="13" text-anchor="middle">requests per second</text>"#,
        TOP + plot_h / 2.0
    );

    // The bars, a group per case.
    let group_w = plot_w / report.cases.len().max(1) as f64;
    let bar_w = group_w * GROUP_FILL / targets.len().max(1) as f64;
    for (c, case) in report.cases.iter().enumerate() {
        let group_x = LEFT + group_w * c as f64 + group_w * (1.0 - GROUP_FILL) / 2.0;
        for (t, &target) in targets.iter().enumerate() {
            let x = group_x + bar_w * t as f64;
            match values[c][t] {
                Some(rps) => {
                    let top = y(rps);
                    let _ = writeln!(
                        out,
                        r#"<rect class="bar" x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {} requests/s</title></rect>"#,
                        x + 1.0,
                        bar_w - 2.0,
                        (TOP + plot_h - top).max(0.0),
                        colour(target),
                        escape(target.label()),
                        case,
                        crate::numbers::thousands(rps)
                    );
                    let _ = writeln!(
                        out,
                        r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
                        x + bar_w / 2.0,
                        top - 4.0,
                        compact(rps)
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#999999">n/a</text>"##,
                        x + bar_w / 2.0,
                        TOP + plot_h - 4.0
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="14" text-anchor="middle">{}</text>"#,
            LEFT + group_w * (c as f64 + 0.5),
            TOP + plot_h + 22.0,
            escape(&case.to_string())
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">test and pipeline depth (P1: one request in flight per client, P16: sixteen)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 18.0
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_report;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(1_000_000.0, 5), 200_000.0);
        assert_eq!(nice_step(1_300_000.0, 5), 500_000.0);
        assert_eq!(nice_step(110_000.0, 5), 25_000.0);
        assert_eq!(nice_step(0.0, 5), 1.0);
        assert_eq!(nice_step(7.0, 5), 2.0);
    }

    #[test]
    fn compact_numbers() {
        assert_eq!(compact(1_500_000.0), "1.5M");
        assert_eq!(compact(1_234_567.0), "1.23M");
        assert_eq!(compact(2_000_000.0), "2M");
        assert_eq!(compact(712_345.0), "712k");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(0.0), "0");
    }

    #[test]
    fn one_bar_per_target_and_case_with_a_legend() {
        let report = sample_report();
        let chart = svg(&report);
        assert!(chart.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(chart.trim_end().ends_with("</svg>"));
        assert_eq!(chart.matches("class=\"bar\"").count(), 2 * 3);
        for label in ["redis", "twemproxy", "proxy/redis", "SET P1", "GET P16"] {
            assert!(chart.contains(&format!(">{label}<")), "no {label}");
        }
        assert!(chart.contains("requests per second"));
        assert!(chart.contains("<title>proxy/redis GET P16: 900,000 requests/s</title>"));
        // Every element is closed: each `<` starts either an element that closes itself
        // (`/>`) or one of a pair (`<x>` ... `</x>`).
        let tags = chart.matches('<').count();
        let pairs = chart.matches("</").count();
        let self_closed = chart.matches("/>").count();
        assert_eq!(tags, 2 * pairs + self_closed);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
