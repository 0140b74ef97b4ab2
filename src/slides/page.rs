//! The deck as one HTML page: a `<section class="slide">` per slide, in
//! order, numbered from 1 (`id="12"`, so `/slides#12` lands on slide 12 even
//! without JavaScript).
//!
//! The audience view carries no speaker notes at all. The presenter view
//! (`/slides?notes`) adds each slide's notes and the lead's to-dos in
//! `<aside>`s, and the panel `static/slides.js` fills with the current
//! slide's notes, the slide count and the timer.

use super::{escape, Deck};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Audience,
    Presenter,
}

impl View {
    /// `?notes` (with or without a value) asks for the presenter view.
    pub fn from_query(query: Option<&str>) -> Self {
        let notes = query
            .unwrap_or("")
            .split('&')
            .any(|kv| kv == "notes" || kv.starts_with("notes="));
        if notes {
            Self::Presenter
        } else {
            Self::Audience
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Audience => "audience",
            Self::Presenter => "presenter",
        }
    }
}

pub fn render(deck: &Deck, view: View) -> String {
    let count = deck.slides.len();
    let title = escape(deck.title());
    let mut out = format!(
        "<!doctype html>\n\
         <!-- Rendered by src/slides/ from slides/*.md; keys and views: static/slides.js. -->\n\
         <html lang=\"en\" data-view=\"{view}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"/slides.css\">\n\
         <script src=\"/slides.js\" defer></script>\n</head>\n<body>\n",
        view = view.name(),
    );
    let problems = deck.problems();
    if !problems.is_empty() {
        out.push_str(&format!(
            "<div class=\"deck-problems\" role=\"alert\">This deck has {} problem(s); \
             each is listed on its slide.</div>\n",
            problems.len()
        ));
    }
    out.push_str(&format!("<main id=\"deck\" data-count=\"{count}\">\n"));
    for slide in &deck.slides {
        let n = slide.number;
        let slide_title = escape(&slide.title);
        out.push_str(&format!(
            "<section class=\"slide\" id=\"{n}\" data-title=\"{slide_title}\" \
             data-source=\"{}:{}\" aria-label=\"Slide {n} of {count}: {slide_title}\">\n\
             <div class=\"frame\">\n{}",
            escape(&slide.file),
            slide.line,
            slide.html,
        ));
        if !slide.problems.is_empty() {
            out.push_str("<ul class=\"problem\">\n");
            for problem in &slide.problems {
                out.push_str(&format!("<li>{}</li>\n", escape(problem)));
            }
            out.push_str("</ul>\n");
        }
        out.push_str(&format!(
            "<footer class=\"foot\"><span>{title}</span><span class=\"count\">{n} / {count}</span></footer>\n</div>\n"
        ));
        if view == View::Presenter {
            out.push_str(&format!(
                "<aside class=\"notes\">\n{}</aside>\n",
                slide.notes_html
            ));
            if !slide.todos.is_empty() {
                out.push_str("<aside class=\"todo\"><strong>Not done yet (lead comments in the slide file):</strong>\n");
                for todo in &slide.todos {
                    out.push_str(&format!("<pre>{}</pre>\n", escape(todo)));
                }
                out.push_str("</aside>\n");
            }
        }
        out.push_str("</section>\n");
    }
    out.push_str("</main>\n");
    if view == View::Presenter {
        out.push_str(&format!(
            "<div id=\"presenter\">\n<div id=\"pv-notes\" class=\"pv-notes\"></div>\n\
             <div class=\"pv-bar\"><span id=\"pv-count\">1 / {count}</span>\n\
             <button type=\"button\" id=\"pv-timer\" title=\"Click to pause or resume; T resets\">0:00</button>\n\
             <span id=\"pv-clock\"></span></div>\n</div>\n"
        ));
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_in_the_query_ask_for_the_presenter() {
        assert_eq!(View::from_query(None), View::Audience);
        assert_eq!(View::from_query(Some("notes")), View::Presenter);
        assert_eq!(View::from_query(Some("check&notes=1")), View::Presenter);
        assert_eq!(View::from_query(Some("notesy")), View::Audience);
    }
}
