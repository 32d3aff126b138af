//! The ring as a picture: an SVG of the circle with every virtual node as a tick coloured by
//! its server, each server's arcs, and the demo keys at their hash positions, the ones that
//! just moved marked. Pure: a [`HashRing`] and key marks in, SVG text out.

use std::fmt::Write as _;

use ring::HashRing;

/// Colours of the servers, in the ring's sorted order (cache-A, B, C at the seed's ports).
const PALETTE: [&str; 6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf"];
/// Radius of the ring, in the picture's units.
const R: f64 = 150.0;
/// The picture's size.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
/// Where the ring's centre is.
const CX: f64 = 210.0;
const CY: f64 = 215.0;

/// A key to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMark {
    /// The key.
    pub key: String,
    /// The server it moved from in the step drawn, if it moved.
    pub moved_from: Option<String>,
}

/// The position's point on a circle of `radius`; 0 at the top, clockwise.
fn at(position: u32, radius: f64) -> (f64, f64) {
    let angle = f64::from(position) / 4_294_967_296.0 * std::f64::consts::TAU - std::f64::consts::FRAC_PI_2;
    (CX + radius * angle.cos(), CY + radius * angle.sin())
}

/// XML text escaping for labels.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An arc of the ring from position `from` (exclusive) clockwise to `to`.
fn arc(svg: &mut String, from: u32, to: u32, colour: &str) {
    let span = u64::from(to.wrapping_sub(from));
    if from == to {
        let _ =
            writeln!(svg, r#"<circle cx="{CX}" cy="{CY}" r="{R}" fill="none" stroke="{colour}" stroke-width="10"/>"#);
        return;
    }
    let (x1, y1) = at(from, R);
    let (x2, y2) = at(to, R);
    let large = u8::from(span > 1 << 31);
    let _ = writeln!(
        svg,
        r#"<path d="M {x1:.2} {y1:.2} A {R} {R} 0 {large} 1 {x2:.2} {y2:.2}" fill="none" stroke="{colour}" stroke-width="10"/>"#
    );
}

/// The SVG of `ring` with `keys`, titled `title`; servers are labelled by `name` (their
/// address when it returns `None`).
pub fn ring_svg(title: &str, ring: &HashRing, keys: &[KeyMark], name: &dyn Fn(&str) -> Option<String>) -> String {
    let colour = |addr: &str| ring.id_of(addr).map_or("#999", |id| PALETTE[id.0 as usize % PALETTE.len()]);
    let label = |addr: &str| name(addr).unwrap_or_else(|| addr.to_string());
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(svg, r#"<text x="16" y="24" font-size="15" font-weight="bold">{}</text>"#, escape(title));
    let _ = writeln!(svg, r##"<circle cx="{CX}" cy="{CY}" r="{R}" fill="none" stroke="#dddddd" stroke-width="1"/>"##);
    let points: Vec<(u32, &str)> = ring.points().collect();
    // Point i owns the positions after point i-1 up to itself.
    for (i, &(position, owner)) in points.iter().enumerate() {
        let previous = points[(i + points.len() - 1) % points.len()].0;
        arc(&mut svg, previous, position, colour(owner));
    }
    for &(position, owner) in &points {
        let (x1, y1) = at(position, R - 16.0);
        let (x2, y2) = at(position, R + 10.0);
        let _ = writeln!(
            svg,
            r#"<line class="tick" x1="{x1:.2}" y1="{y1:.2}" x2="{x2:.2}" y2="{y2:.2}" stroke="{}" stroke-width="2"/>"#,
            colour(owner)
        );
    }
    // Keys on an inner circle, a line to the point that owns them.
    for key in keys {
        let Some(route) = ring.route(key.key.as_bytes()) else { continue };
        let owner = ring.server(route.server);
        let (kx, ky) = at(route.hash, R - 42.0);
        let (px, py) = at(route.point, R - 16.0);
        let moved = key.moved_from.is_some();
        let stroke = if moved { "#d62728" } else { "#999999" };
        let _ = writeln!(
            svg,
            r#"<line x1="{kx:.2}" y1="{ky:.2}" x2="{px:.2}" y2="{py:.2}" stroke="{stroke}" stroke-width="1" stroke-dasharray="3 2"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<circle class="key" cx="{kx:.2}" cy="{ky:.2}" r="{}" fill="{}" stroke="{stroke}" stroke-width="{}"/>"#,
            if moved { 6 } else { 4 },
            colour(owner),
            if moved { 2.5 } else { 1.0 }
        );
    }
    // The legend: servers with their share, then the keys.
    let mut y = 60.0;
    let x = 400.0;
    let _ = writeln!(svg, r#"<text x="{x}" y="{y}" font-weight="bold">Servers (share of the ring)</text>"#);
    for id in ring.server_ids() {
        y += 20.0;
        let addr = ring.server(id);
        let _ = writeln!(svg, r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/>"#, y - 10.0, colour(addr));
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{y}">{} {:.1}% ({} points)</text>"#,
            x + 18.0,
            escape(&label(addr)),
            ring.share(id) * 100.0,
            ring.point_count(id)
        );
    }
    if !keys.is_empty() {
        y += 30.0;
        let _ = writeln!(svg, r#"<text x="{x}" y="{y}" font-weight="bold">Keys (owner)</text>"#);
        for key in keys {
            let Some(owner) = ring.get(key.key.as_bytes()) else { continue };
            y += 18.0;
            let text = match &key.moved_from {
                Some(from) => format!("{} -> {}  moved from {}", key.key, label(owner), label(from)),
                None => format!("{} -> {}", key.key, label(owner)),
            };
            let fill = if key.moved_from.is_some() { "#d62728" } else { "#333333" };
            let _ = writeln!(svg, r#"<text x="{x}" y="{y}" fill="{fill}">{}</text>"#, escape(&text));
        }
    }
    let _ = writeln!(
        svg,
        r##"<text x="16" y="{}" fill="#777777">ticks: virtual nodes; arcs: what each server owns; dots: keys at their hash, red when they just moved</text>"##,
        HEIGHT - 12.0
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_tick_per_point_and_marks_moved_keys() {
        let mut ring = HashRing::new(3);
        ring.add_all(["127.0.0.1:6381", "127.0.0.1:6382", "127.0.0.1:6383"]);
        let keys = vec![
            KeyMark { key: "user:1001".into(), moved_from: Some("127.0.0.1:6382".into()) },
            KeyMark { key: "cart:<alice>".into(), moved_from: None },
        ];
        let name = |addr: &str| (addr == "127.0.0.1:6381").then(|| "cache-A".to_string());
        let svg = ring_svg("Step 4. Add cache-C", &ring, &keys, &name);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("class=\"tick\"").count(), ring.point_total());
        assert_eq!(svg.matches("class=\"key\"").count(), 2);
        assert!(svg.contains("moved from 127.0.0.1:6382"));
        assert!(svg.contains("cache-A"));
        assert!(svg.contains("cart:&lt;alice&gt;"), "labels are escaped");
    }

    #[test]
    fn an_empty_ring_is_still_a_picture() {
        let svg = ring_svg("empty", &HashRing::new(3), &[], &|_: &str| None);
        assert_eq!(svg.matches("class=\"tick\"").count(), 0);
        assert!(svg.contains("</svg>"));
    }
}
