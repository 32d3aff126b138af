//! Pure presentation: aligned tables, headings, the summary line and percentages.
//!
//! Nothing here does I/O, so every format the walkthrough prints is unit-tested. Columns are
//! padded on the plain text and painted afterwards, so colour codes never break alignment.

use cli::Palette;

/// Left margin of every table row and note.
pub const INDENT: &str = "  ";
/// Space between two table columns.
const GAP: &str = "  ";

/// How one table cell is painted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// No styling.
    Plain,
    /// Good news: a hit.
    Good,
    /// Bad news: a miss.
    Bad,
    /// A change: a moved key.
    Changed,
    /// The name of a server.
    Name,
    /// Secondary text.
    Quiet,
}

/// One table cell: its text and how to paint it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The plain text; its character count is its width.
    pub text: String,
    /// How it is painted.
    pub style: Style,
}

impl Cell {
    /// An unstyled cell.
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell::styled(text, Style::Plain)
    }

    /// A cell painted with `style`.
    pub fn styled(text: impl Into<String>, style: Style) -> Cell {
        Cell { text: text.into(), style }
    }

    /// An empty cell (keeps later columns aligned).
    pub fn empty() -> Cell {
        Cell::plain("")
    }
}

/// Paints `text` with `style` through the palette (a no-op when colour is off).
pub fn paint(palette: &Palette, style: Style, text: &str) -> String {
    match style {
        Style::Plain => text.to_string(),
        Style::Good => palette.green(text),
        Style::Bad => palette.red(text),
        Style::Changed => palette.yellow(text),
        Style::Name => palette.cyan(text),
        Style::Quiet => palette.dim(text),
    }
}

/// Renders rows as aligned columns: each column is as wide as its widest cell, columns are
/// separated by two spaces, rows are indented, and trailing blanks are trimmed.
pub fn table(rows: &[Vec<Cell>], palette: &Palette) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|row| row.get(c)).map(|cell| cell.text.chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            // The last non-empty cell is not padded, so lines carry no trailing spaces.
            let used = row.iter().rposition(|cell| !cell.text.is_empty()).map_or(0, |i| i + 1);
            let mut line = String::from(INDENT);
            for (c, cell) in row.iter().take(used).enumerate() {
                if c > 0 {
                    line.push_str(GAP);
                }
                line.push_str(&paint(palette, cell.style, &cell.text));
                if c + 1 < used {
                    let pad = widths[c].saturating_sub(cell.text.chars().count());
                    line.push_str(&" ".repeat(pad));
                }
            }
            line
        })
        .collect()
}

/// The heading of step `number`: `Step 4. Add cache-C to the ring`.
pub fn heading(number: usize, title: &str) -> String {
    format!("Step {number}. {title}")
}

/// The line that ends every read-back: `Summary: 5 hits, 3 misses`.
///
/// The wording is fixed (scripts and tests look for `Summary: 8 hits, 0 misses`), so the
/// plural stays even for 1.
pub fn summary_line(hits: usize, misses: usize) -> String {
    format!("Summary: {hits} hits, {misses} misses")
}

/// `part` as a whole-number percentage of `whole`, rounded to nearest (0 when `whole` is 0).
pub fn percent(part: usize, whole: usize) -> usize {
    (part * 100 + whole / 2).checked_div(whole).unwrap_or(0)
}

/// `1 key`, `3 keys`.
pub fn keys(n: usize) -> String {
    if n == 1 {
        "1 key".to_string()
    } else {
        format!("{n} keys")
    }
}

/// A list for a sentence: `a`, `a and b`, `a, b and c`.
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `4,123`: a count with thousands separators.
pub fn thousands(n: usize) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    // The first group takes what is left over from groups of three.
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        short => short,
    };
    let mut out: String = digits[..head].iter().collect();
    for group in digits[head..].chunks(3) {
        out.push(',');
        out.extend(group);
    }
    out
}

/// `num / den` with `places` decimals, rounded half up, in integer arithmetic (`0` when
/// `den` is 0): `decimal(176, 100, 2)` is `1.76`.
pub fn decimal(num: usize, den: usize, places: u32) -> String {
    let scale = 10usize.pow(places);
    let Some(scaled) = (num * scale + den / 2).checked_div(den) else {
        return "0".to_string();
    };
    if places == 0 {
        return scaled.to_string();
    }
    format!("{}.{:0width$}", scaled / scale, scaled % scale, width = places as usize)
}

/// `part` as a percentage of `whole` with one decimal: `41.2%`.
pub fn percent_tenths(part: usize, whole: usize) -> String {
    format!("{}%", decimal(part * 100, whole, 1))
}

/// Glyphs for a filled and an empty stretch of a [`bar`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarGlyphs {
    /// `███░░░`, for a terminal.
    Blocks,
    /// `###...`, for pipes and files.
    Ascii,
}

impl BarGlyphs {
    /// Blocks when the palette paints (a terminal), plain ASCII otherwise.
    pub fn for_palette(palette: &Palette) -> BarGlyphs {
        if palette.enabled() {
            BarGlyphs::Blocks
        } else {
            BarGlyphs::Ascii
        }
    }
}

/// A bar `width` characters wide, filled in proportion to `part / whole` (rounded, never
/// past the end): `bar(1, 4, 8, BarGlyphs::Ascii)` is `##......`.
pub fn bar(part: usize, whole: usize, width: usize, glyphs: BarGlyphs) -> String {
    let filled = ((part * width + whole / 2).checked_div(whole).unwrap_or(0)).min(width);
    let (full, empty) = match glyphs {
        BarGlyphs::Blocks => ('\u{2588}', '\u{2591}'),
        BarGlyphs::Ascii => ('#', '.'),
    };
    std::iter::repeat_n(full, filled).chain(std::iter::repeat_n(empty, width - filled)).collect()
}

/// Pads every string on the left to the widest one, so a column of numbers lines up on
/// its last digit inside a left-aligned [`table`].
pub fn right_align(column: &[String]) -> Vec<String> {
    let width = column.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    column.iter().map(|s| format!("{s:>width$}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_table(rows: &[Vec<Cell>]) -> Vec<String> {
        table(rows, &Palette::plain())
    }

    #[test]
    fn columns_align_on_the_widest_cell() {
        let rows = vec![
            vec![Cell::plain("user:1001"), Cell::plain("cache-B (127.0.0.1:6382)")],
            vec![
                Cell::plain("product:laptop"),
                Cell::plain("cache-A (127.0.0.1:6381)"),
                Cell::styled("moved from cache-B", Style::Changed),
            ],
        ];
        assert_eq!(
            plain_table(&rows),
            [
                "  user:1001       cache-B (127.0.0.1:6382)",
                "  product:laptop  cache-A (127.0.0.1:6381)  moved from cache-B",
            ]
        );
    }

    #[test]
    fn empty_middle_cells_keep_alignment_and_no_trailing_spaces() {
        let rows = vec![
            vec![Cell::plain("a"), Cell::empty(), Cell::plain("x")],
            vec![Cell::plain("bbb"), Cell::plain("yy"), Cell::empty()],
        ];
        assert_eq!(plain_table(&rows), ["  a        x", "  bbb  yy"]);
    }

    #[test]
    fn colour_does_not_change_alignment() {
        // With colour on, the padding follows the escape codes, not the other way round.
        let rows = vec![
            vec![Cell::styled("HIT", Style::Good), Cell::plain("x")],
            vec![Cell::styled("MISS", Style::Bad), Cell::plain("y")],
        ];
        let plain = plain_table(&rows);
        assert_eq!(plain, ["  HIT   x", "  MISS  y"]);
    }

    #[test]
    fn summary_line_has_the_fixed_wording() {
        assert_eq!(summary_line(8, 0), "Summary: 8 hits, 0 misses");
        assert_eq!(summary_line(4, 4), "Summary: 4 hits, 4 misses");
    }

    #[test]
    fn small_helpers() {
        assert_eq!(heading(4, "Add cache-C"), "Step 4. Add cache-C");
        assert_eq!(percent(3, 8), 38);
        assert_eq!(percent(4, 8), 50);
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(0, 0), 0);
        assert_eq!(keys(1), "1 key");
        assert_eq!(keys(0), "0 keys");
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(and_list(&names(&["a"])), "a");
        assert_eq!(and_list(&names(&["a", "b"])), "a and b");
        assert_eq!(and_list(&names(&["a", "b", "c"])), "a, b and c");
    }

    #[test]
    fn numbers_read_like_prose() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(4123), "4,123");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(decimal(176, 100, 2), "1.76");
        assert_eq!(decimal(5881 * 3, 10_000, 2), "1.76");
        assert_eq!(decimal(1, 3, 2), "0.33");
        assert_eq!(decimal(2, 3, 0), "1");
        assert_eq!(decimal(1, 0, 2), "0");
        assert_eq!(percent_tenths(4123, 10_000), "41.2%");
        assert_eq!(percent_tenths(1, 3), "33.3%");
        assert_eq!(percent_tenths(10_000, 10_000), "100.0%");
        assert_eq!(percent_tenths(5, 10_000), "0.1%");
    }

    #[test]
    fn bars_fill_in_proportion() {
        assert_eq!(bar(1, 4, 8, BarGlyphs::Ascii), "##......");
        assert_eq!(bar(0, 4, 4, BarGlyphs::Ascii), "....");
        assert_eq!(bar(4, 4, 4, BarGlyphs::Ascii), "####");
        assert_eq!(bar(9, 4, 4, BarGlyphs::Ascii), "####");
        assert_eq!(bar(1, 0, 3, BarGlyphs::Ascii), "...");
        assert_eq!(bar(1, 2, 4, BarGlyphs::Blocks), "\u{2588}\u{2588}\u{2591}\u{2591}");
        assert_eq!(bar(1, 2, 40, BarGlyphs::Blocks).chars().count(), 40);
        assert_eq!(BarGlyphs::for_palette(&Palette::plain()), BarGlyphs::Ascii);
        let column = ["7".to_string(), "1,234".to_string()];
        assert_eq!(right_align(&column), ["    7", "1,234"]);
    }
}
