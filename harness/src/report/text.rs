//! Text safety shared by the human-readable reports: characters that could act instead of being
//! read (terminal escapes, NUL, noncharacters, text-direction overrides) become visible stand-ins,
//! and HTML text is escaped. Pure.

/// Control characters become their Unicode control pictures (ESC → ␛, NUL → ␀), so they are
/// seen instead of acting; C1 controls, noncharacters and text-direction overrides become U+FFFD.
pub fn visible(c: char) -> char {
    match c {
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        '\u{7f}' => '\u{2421}',
        '\u{80}'..='\u{9f}' => '\u{fffd}',
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '\u{fffd}',
        '\u{fdd0}'..='\u{fdef}' => '\u{fffd}',
        c if (c as u32) & 0xfffe == 0xfffe => '\u{fffd}',
        c => c,
    }
}

/// Escape text for HTML element content and quoted attribute values; newlines and tabs are kept
/// (for `<pre>` and wrapped messages), every other control character is made visible.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c => out.push(visible(c)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_and_markup_is_escaped() {
        assert_eq!(
            html("<a href='x'>&\u{1b}\u{0}\u{fffe}\u{202e}"),
            "&lt;a href=&#39;x&#39;&gt;&amp;\u{241b}\u{2400}\u{fffd}\u{fffd}"
        );
        assert_eq!(visible('\u{1ffff}'), '\u{fffd}');
        assert_eq!(visible('é'), 'é');
    }
}
