//! A small WebDriver client over reqwest, driving headless Chromium through
//! Debian's `chromedriver`: just the commands the console tests need
//! (navigate, find, type, click, read, run a script, screenshot), and no
//! new dependency. Every URL the browser was on is recorded, so a test can
//! check that a national ID never appeared in one.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session, with its own chromedriver on a free port; both end
/// when it is dropped.
pub struct Browser {
    http: reqwest::Client,
    driver: Child,
    base: String,
    /// Every URL the browser was on after a navigation or a click.
    pub visited: Vec<String>,
}

/// A found element.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// A headless Chromium at 1280×900, or `None` (with a notice) when
    /// Chromium or chromedriver is not installed. Under CI (`CI=true`) a
    /// missing browser fails the test instead: never a silent skip.
    pub async fn start() -> Option<Browser> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|p| !std::path::Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "browser tests need {missing:?} under CI \
                 (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "SKIPPED: {missing:?} not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut browser = Browser {
            http: reqwest::Client::new(),
            driver,
            base: format!("http://127.0.0.1:{port}"),
            visited: Vec::new(),
        };
        let ready = Instant::now() + Duration::from_secs(20);
        loop {
            let status = browser
                .http
                .get(format!("{}/status", browser.base))
                .send()
                .await;
            if let Ok(s) = status
                && let Ok(v) = s.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < ready, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let answer = browser
            .call(
                reqwest::Method::POST,
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                 "--disable-dev-shm-usage", "--window-size=1280,900",
                                 "--lang=zh-TW", "--accept-lang=zh-TW,zh"],
                        "prefs": {"intl.accept_languages": "zh-TW,zh"},
                    },
                }}}),
            )
            .await;
        let id = answer["sessionId"]
            .as_str()
            .expect("a WebDriver session id")
            .to_string();
        browser.base = format!("{}/session/{id}", browser.base);
        Some(browser)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if method != reqwest::Method::GET {
            req = req.json(&body);
        }
        let answer: Value = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
            .json()
            .await
            .expect("a WebDriver answer");
        let value = answer["value"].clone();
        if let Some(error) = value.get("error") {
            panic!("WebDriver {path}: {error}: {}", value["message"]);
        }
        value
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, Value::Null).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, body).await
    }

    async fn record_url(&mut self) {
        let url = self.current_url().await;
        self.visited.push(url);
    }

    pub async fn goto(&mut self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
        self.record_url().await;
    }

    pub async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn find(&self, css: &str) -> Element {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        Element(v[ELEMENT].as_str().expect("an element").to_string())
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| Element(e[ELEMENT].as_str().expect("an element").to_string()))
            .collect()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .await;
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await;
    }

    /// Types `text` into a field and presses Enter, as a keyboard user
    /// submits a form; waits for the page that led to.
    pub async fn submit_with_enter(&mut self, css: &str, text: &str) {
        self.mark_page().await;
        self.type_into(css, &format!("{text}\u{E007}")).await;
        self.wait_new_page().await;
        self.record_url().await;
    }

    /// Resizes the window (a phone: 390 × 844).
    pub async fn window_size(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await;
    }

    /// Clicks what leads to another page (a link, a form's button) and
    /// waits until that page has loaded.
    pub async fn click(&mut self, css: &str) {
        self.mark_page().await;
        self.press(css).await;
        self.wait_new_page().await;
        self.record_url().await;
    }

    /// Clicks what stays on the page (a script's button).
    pub async fn press(&self, css: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await;
    }

    /// Marks the current document, to tell when another one replaced it.
    async fn mark_page(&self) {
        self.script("window.__hoursyncOldPage = true", json!([]))
            .await;
    }

    /// Waits until a new document (not the marked one) has loaded. During
    /// the navigation a script may fail: that is waiting too.
    async fn wait_new_page(&self) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = self
                .http
                .post(format!("{}/execute/sync", self.base))
                .json(&json!({
                    "script": "return !window.__hoursyncOldPage && document.readyState === 'complete'",
                    "args": [],
                }))
                .send()
                .await;
            if let Ok(a) = answer
                && let Ok(v) = a.json::<Value>().await
                && v["value"] == true
            {
                return;
            }
            assert!(Instant::now() < until, "no new page loaded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn text_of(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.text(&e).await
    }

    pub async fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", e.0))
            .await
            .as_str()
            .map(str::to_string)
    }

    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Runs an async script: it ends by calling `arguments[arguments.length - 1](value)`.
    pub async fn script_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": args }))
            .await
    }

    /// Grants the page a permission (`clipboard-read`, `clipboard-write`…).
    pub async fn grant(&self, permission: &str) {
        self.post(
            "/permissions",
            json!({"descriptor": {"name": permission}, "state": "granted"}),
        )
        .await;
    }

    /// Whether a JavaScript alert is open (an injected script ran).
    pub async fn alert_open(&self) -> bool {
        let answer: Value = self
            .http
            .get(format!("{}/alert/text", self.base))
            .send()
            .await
            .expect("WebDriver alert")
            .json()
            .await
            .expect("a WebDriver answer");
        answer["value"].get("error").is_none()
    }

    pub async fn title(&self) -> String {
        self.get("/title")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Saves the page as `target/screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.get("/screenshot").await;
        let png = decode_base64(b64.as_str().expect("a base64 screenshot"));
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Browser {
    /// Ends the WebDriver session, which closes Chromium.
    pub async fn close(mut self) {
        let _ = self.http.delete(&self.base).send().await;
        self.base.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed before `close`: ask the driver to end the
        // session (which closes Chromium) by a plain request, then stop it.
        if !self.base.is_empty() {
            let url = self.base.clone();
            let _ = Command::new("curl")
                .args(["-s", "-m", "5", "-X", "DELETE", &url])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64, as WebDriver sends screenshots.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u32> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, d)| acc | d << (18 - 6 * i));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}
