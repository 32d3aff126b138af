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
}
