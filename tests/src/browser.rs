//! A scripted browser for the OIDC test peer's sign-in pages: follows redirects, keeps
//! cookies per host, reads forms (their action and hidden fields) and submits them, as
//! a person's browser would. Enough HTML for the peer's pages, nothing more.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;

/// A page the browser landed on.
#[derive(Clone, Debug)]
pub struct Page {
    pub url: String,
    pub status: u16,
    pub body: String,
}

/// A form on a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    pub id: Option<String>,
    pub action: String,
    pub hidden: Vec<(String, String)>,
}

impl Page {
    /// Every `<form method="post">` on the page.
    pub fn forms(&self) -> Vec<Form> {
        let mut forms = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(start) = rest.find("<form") {
            let tail = &rest[start..];
            let end = tail.find("</form>").unwrap_or(tail.len());
            let html = &tail[..end];
            let open = &html[..html.find('>').unwrap_or(html.len())];
            if let Some(action) = attribute(open, "action") {
                let hidden = inputs(html)
                    .into_iter()
                    .filter(|tag| attribute(tag, "type").as_deref() == Some("hidden"))
                    .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
                    .collect();
                forms.push(Form {
                    id: attribute(open, "id"),
                    action,
                    hidden,
                });
            }
            rest = &tail[end.min(tail.len())..];
            if rest.starts_with("</form>") {
                rest = &rest[7..];
            }
        }
        forms
    }

    /// The form with `id`.
    pub fn form(&self, id: &str) -> Option<Form> {
        self.forms()
            .into_iter()
            .find(|f| f.id.as_deref() == Some(id))
    }
}

fn inputs(html: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<input") {
        let tail = &rest[start..];
        let end = tail.find('>').unwrap_or(tail.len());
        tags.push(&tail[..end]);
        rest = &tail[end..];
    }
    tags
}

/// The value of `name="…"` in a tag, entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(found) = tag[from..].find(&needle) {
        let at = from + found;
        let before = tag[..at].chars().last();
        if before.is_some_and(char::is_whitespace) {
            let value = &tag[at + needle.len()..];
            let value = &value[..value.find('"')?];
            return Some(decode(value));
        }
        from = at + needle.len();
    }
    None
}

fn decode(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=semi]),
        }
        rest = &tail[semi + 1..];
    }
    out.push_str(rest);
    out
}

/// The browser.
pub struct Browser {
    http: reqwest::Client,
    /// host:port -> cookie name -> value
    cookies: HashMap<String, HashMap<String, String>>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn authority(url: &reqwest::Url) -> String {
        format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    fn keep_cookies(&mut self, url: &reqwest::Url, response: &reqwest::Response) {
        let jar = self.cookies.entry(Self::authority(url)).or_default();
        for header in response.headers().get_all("set-cookie") {
            let Ok(text) = header.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired = text
                .to_ascii_lowercase()
                .contains("expires=thu, 01 jan 1970");
            if value.is_empty() || expired {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    fn cookie_header(&self, url: &reqwest::Url) -> Option<String> {
        let jar = self.cookies.get(&Self::authority(url))?;
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Sends one request (GET, or POST with `form`), then follows redirects with GET.
    async fn go(&mut self, url: &str, form: Option<Vec<(String, String)>>) -> Page {
        let mut url = reqwest::Url::parse(url).unwrap();
        let mut form = form;
        for _ in 0..20 {
            let mut request = match form.take() {
                Some(fields) => self.http.post(url.clone()).form(&fields),
                None => self.http.get(url.clone()),
            };
            if let Some(cookie) = self.cookie_header(&url) {
                request = request.header("cookie", cookie);
            }
            let response = request.send().await.unwrap();
            self.keep_cookies(&url, &response);
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get("location")
            {
                url = url.join(location.to_str().unwrap()).unwrap();
                continue;
            }
            return Page {
                url: url.to_string(),
                status: status.as_u16(),
                body: response.text().await.unwrap(),
            };
        }
        panic!("more than 20 redirects from {url}");
    }

    pub async fn get(&mut self, url: &str) -> Page {
        self.go(url, None).await
    }

    /// Submits `form` of `page` with its hidden fields and `fields`.
    pub async fn submit(&mut self, page: &Page, form: &Form, fields: &[(&str, &str)]) -> Page {
        let action = reqwest::Url::parse(&page.url)
            .unwrap()
            .join(&form.action)
            .unwrap();
        let mut all = form.hidden.clone();
        all.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.go(action.as_str(), Some(all)).await
    }

    /// Opens `url` and goes through the peer's pages as `username`: confirms a device
    /// code, fills in the login form. Returns the last page.
    pub async fn sign_in(&mut self, url: &str, username: &str, password: &str) -> Page {
        let mut page = self.get(url).await;
        for _ in 0..6 {
            if let Some(login) = page.form("login") {
                page = self
                    .submit(
                        &page,
                        &login,
                        &[("username", username), ("password", password)],
                    )
                    .await;
            } else if let Some(form) = page.forms().into_iter().find(|f| {
                f.id.as_deref() != Some("deny") && f.hidden.iter().any(|(k, _)| k == "xsrf")
            }) {
                // A device code's confirmation, or a page that submits itself.
                page = self.submit(&page, &form, &[]).await;
            } else {
                return page;
            }
        }
        page
    }

    /// Opens `url` and presses Deny on the login form.
    pub async fn deny(&mut self, url: &str) -> Page {
        let page = self.get(url).await;
        let deny = page.form("deny").expect("a login form with a Deny button");
        self.submit(&page, &deny, &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_their_hidden_fields_are_read() {
        let page = Page {
            url: "http://x/".into(),
            status: 200,
            body: r#"<form id="a" method="post" action="/go?x=1&amp;y=2"><input type="hidden" name="xsrf" value="t&#43;1"/><input type="text" name="u"/></form>
<form method="post" action="http://x/b"><input type="hidden" name="k" value="v"/></form>"#
                .into(),
        };
        let forms = page.forms();
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[0].id.as_deref(), Some("a"));
        assert_eq!(forms[0].action, "/go?x=1&y=2");
        assert_eq!(forms[0].hidden, [("xsrf".to_owned(), "t+1".to_owned())]);
        assert_eq!(forms[1].id, None);
        assert_eq!(forms[1].hidden, [("k".to_owned(), "v".to_owned())]);
    }
}
