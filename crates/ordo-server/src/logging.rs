//! Log output with personal data taken out. Every formatted log line passes through `redact`
//! before it reaches stderr: email addresses, phone numbers, card-like digit runs, and the values
//! of address, phone, email and secret fields (in `key=value`, `key: value` and JSON form) are
//! replaced. Whatever a future log line or a storage error message carries, the shopper's email,
//! phone and street do not reach the log.

use regex::Regex;
use std::io::Write;
use std::sync::OnceLock;

struct Rules {
    fields: Regex,
    email: Regex,
    phone: Regex,
    digits: Regex,
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| Rules {
        // `line1="1 Main St"`, `"phone":"+1 415…"`, `email: a@b.c`, `password=…` (up to the next
        // quote for quoted values, else up to whitespace, comma or brace).
        fields: Regex::new(
            r#"(?i)(\\?"?\b(?:line1|line2|street|address_line\d?|phone|email|password|client_secret|refresh_token|cvc|card_number|postal_code)\\?"?\s*[:=]\s*)(\\?"(?:[^"\\]|\\[^"])*\\?"|[^\s,}\]]+)"#,
        )
        .expect("field rule"),
        email: Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}").expect("email rule"),
        // International numbers (+ and 7–15 digits, spaces, dots, dashes or brackets between).
        phone: Regex::new(r"\+\d(?:[\s().\-]{0,2}\d){6,14}").expect("phone rule"),
        // Card-like runs of 13–19 digits (spaces or dashes between groups allowed).
        digits: Regex::new(r"\b\d(?:[ \-]?\d){12,18}\b").expect("digits rule"),
    })
}

/// The text with personal data and secrets replaced by `[redacted]`.
pub fn redact(text: &str) -> String {
    let r = rules();
    let text = r.fields.replace_all(text, |c: &regex::Captures| {
        let value = &c[2];
        let quoted = value.starts_with('"') || value.starts_with("\\\"");
        let q = if value.starts_with("\\\"") {
            "\\\""
        } else {
            "\""
        };
        if quoted {
            format!("{}{q}[redacted]{q}", &c[1])
        } else {
            format!("{}[redacted]", &c[1])
        }
    });
    let text = r.email.replace_all(&text, "[redacted-email]");
    let text = r.phone.replace_all(&text, "[redacted-phone]");
    r.digits
        .replace_all(&text, "[redacted-number]")
        .into_owned()
}

/// A `MakeWriter` for tracing-subscriber: each event is formatted into a buffer, redacted, then
/// written to stderr in one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactedStderr;

pub struct EventBuffer(Vec<u8>);

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let line = redact(&String::from_utf8_lossy(&self.0));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = EventBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer(Vec::with_capacity(256))
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn personal_data_is_taken_out_in_every_form() {
        let cases = [
            (
                r#"customer email=ana.lima@example.com placed"#,
                "ana.lima@example.com",
            ),
            (
                r#"duplicate key (email)=(bo+tag@shop.example.co.uk) violates"#,
                "bo+tag@shop.example.co.uk",
            ),
            (r#"{"phone":"+1 (415) 555-0100","city":"SF"}"#, "555-0100"),
            (r#"phone=4155550100 other=1"#, "4155550100"),
            (r#"call +44 20 7946 0958 now"#, "7946 0958"),
            (
                r#"{"line1":"1 Market St, Apt 4","line2":null}"#,
                "Market St",
            ),
            (r#"address line1="742 Evergreen Terrace" ok"#, "Evergreen"),
            (r#"{\"line1\":\"9 Elm Road\"}"#, "Elm Road"),
            (r#"card 4242 4242 4242 4242 declined"#, "4242 4242"),
            (r#"card=4000000000000002"#, "4000000000000002"),
            (r#"password: hunter2-but-longer"#, "hunter2"),
        ];
        for (line, secret) in cases {
            let out = redact(line);
            assert!(!out.contains(secret), "{line:?} became {out:?}");
            assert!(out.contains("[redacted"), "{out:?}");
        }
    }

    #[test]
    fn ordinary_log_lines_are_left_alone() {
        for line in [
            "2026-11-26T07:12:01.123456Z  INFO request{method=POST uri=/v1/orders request_id=0192f1c2-a7b4-7e3f-9d2a-1b3c4d5e6f70}: status=201 latency_ms=12",
            r#"{"timestamp":"2026-11-26T07:12:01.123456Z","level":"WARN","fields":{"message":"request timed out","limit_ms":30000}}"#,
            "a placement batch failed as a whole; placing its orders one by one orders=64",
            "order ORD-7K2M-9QXF sku TEE-1-BLA-M quantity 2 total 3800 USD",
        ] {
            assert_eq!(redact(line), line);
        }
    }
}
