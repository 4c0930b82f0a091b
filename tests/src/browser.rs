//! A real browser against the real webhook: headless Chromium (Debian's `chromium`, installed by
//! `infra/local/stack.sh install`) driven over the DevTools protocol, and the webhook's handler
//! served over HTTP on a loopback port, so a test opens the links of a rendered email as a link
//! scanner does (scripts run, nothing is pressed) or as a person does (a click, then a press of
//! the page's button).
//!
//! The DevTools protocol is JSON over a WebSocket; the few frames it needs are written here by
//! hand (no crate), over a plain loopback `TcpStream`. Chromium is started with every background
//! service off and a host resolver that knows `127.0.0.1` only, so it reaches nothing but the
//! server the test started.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where Chromium is: `WINBACK_CHROMIUM` (the local stack's env file sets it), else the first of
/// `chromium`, `chromium-browser`, `google-chrome` on `PATH`. Fails (never skips) with how to
/// install it.
pub fn chromium_path() -> PathBuf {
    if let Ok(p) = std::env::var("WINBACK_CHROMIUM") {
        if !p.trim().is_empty() {
            return PathBuf::from(p.trim());
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "headless Chromium is needed for the link-scanner case and was not found: \
         `infra/local/stack.sh install` installs Debian's package `chromium` (infra/test runs it), \
         or set WINBACK_CHROMIUM to a Chromium binary"
    )
}

// ---------------------------------------------------------------------------------------------
// The webhook over HTTP

/// A request the served webhook answered: its method, path and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// The webhook's handler on `http://127.0.0.1:<port>`, every request handled at the time
/// `clock` says, each one kept in [`WebhookServer::served`].
pub struct WebhookServer {
    pub base_url: String,
    served: Arc<Mutex<Vec<Served>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookServer {
    /// Binds a free loopback port; `deps_for` builds the webhook's dependencies once the base
    /// URL (`http://127.0.0.1:<port>/`) is known.
    pub async fn start(
        deps_for: impl FnOnce(&str) -> webhook::Deps,
        clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
    ) -> WebhookServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let base_url = format!("http://127.0.0.1:{port}/");
        let deps = Arc::new(deps_for(&base_url));
        let served = Arc::new(Mutex::new(Vec::new()));
        let clock = Arc::new(clock);
        let log = served.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (deps, log, clock) = (deps.clone(), log.clone(), clock.clone());
                tokio::spawn(async move {
                    let _ = serve_one(socket, &deps, &log, clock()).await;
                });
            }
        });
        WebhookServer {
            base_url,
            served,
            task,
        }
    }

    /// Every request answered so far.
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().expect("lock").clone()
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body), answers it with the webhook's
/// response and closes the connection.
async fn serve_one(
    mut socket: tokio::net::TcpStream,
    deps: &webhook::Deps,
    log: &Mutex<Vec<Served>>,
    now: DateTime<Utc>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = target
        .split_once('?')
        .map_or((target.clone(), String::new()), |(p, q)| {
            (p.to_string(), q.to_string())
        });
    let req = webhook::HttpRequest {
        method: method.clone(),
        path: path.clone(),
        query,
        headers,
        body,
    };
    let resp = webhook::handle_http(deps, req, now).await;
    log.lock().expect("lock").push(Served {
        method,
        path,
        status: resp.status,
    });
    let mut out = format!("HTTP/1.1 {} Answer\r\n", resp.status);
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        resp.body.len()
    ));
    socket.write_all(out.as_bytes()).await?;
    socket.write_all(resp.body.as_bytes()).await?;
    socket.shutdown().await
}

// ---------------------------------------------------------------------------------------------
// A WebSocket client, enough for the DevTools protocol

struct WebSocket {
    stream: TcpStream,
}

impl WebSocket {
    fn connect(port: u16, path: &str) -> io::Result<WebSocket> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: d2luYmFjay1icm93c2VyLTE=\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        if !head.starts_with("HTTP/1.1 101") {
            return Err(io::Error::other(format!("no WebSocket upgrade: {head}")));
        }
        Ok(WebSocket { stream })
    }

    fn frame(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut frame = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= usize::from(u16::MAX) {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        // A client masks what it sends (RFC 6455 5.3); the key need not be secret here.
        let mask = [0x5a, 0x17, 0xc3, 0x9e];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame)
    }

    fn send(&mut self, text: &str) -> io::Result<()> {
        self.frame(0x1, text.as_bytes())
    }

    /// The next text message; `None` when nothing arrived within `wait`.
    fn recv(&mut self, wait: Duration) -> io::Result<Option<String>> {
        let mut message = Vec::new();
        loop {
            let mut b0 = [0u8; 1];
            // Only the wait for a frame's first byte may time out; its rest arrives with it.
            self.stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
            match self.stream.read_exact(&mut b0) {
                Ok(()) => {}
                Err(e)
                    if message.is_empty()
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
            self.stream
                .set_read_timeout(Some(Duration::from_secs(30)))?;
            let mut b1 = [0u8; 1];
            self.stream.read_exact(&mut b1)?;
            let (fin, opcode) = (b0[0] & 0x80 != 0, b0[0] & 0x0f);
            let mut len = u64::from(b1[0] & 0x7f);
            if len == 126 {
                let mut l = [0u8; 2];
                self.stream.read_exact(&mut l)?;
                len = u64::from(u16::from_be_bytes(l));
            } else if len == 127 {
                let mut l = [0u8; 8];
                self.stream.read_exact(&mut l)?;
                len = u64::from_be_bytes(l);
            }
            let mask = if b1[0] & 0x80 != 0 {
                let mut m = [0u8; 4];
                self.stream.read_exact(&mut m)?;
                Some(m)
            } else {
                None
            };
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload)?;
            if let Some(m) = mask {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= m[i % 4];
                }
            }
            match opcode {
                0x0..=0x2 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return Ok(Some(String::from_utf8_lossy(&message).into_owned()));
                    }
                }
                0x9 => self.frame(0xA, &payload)?,
                0x8 => return Err(io::Error::other("the browser closed the connection")),
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chromium

/// A headless Chromium with its own throw-away profile; killed (and the profile removed) on drop.
pub struct Browser {
    child: Child,
    ws: WebSocket,
    next_id: u64,
    events: VecDeque<Value>,
    profile: PathBuf,
}

/// A picture of a whole page ([`Browser::screenshot`]).
#[derive(Debug, Clone)]
pub struct Shot {
    pub png: Vec<u8>,
    /// How wide the page is laid out, in CSS pixels: wider than the window, it scrolls sideways.
    pub page_width: u64,
    pub height: u64,
}

/// A tab: the DevTools session attached to it.
#[derive(Debug, Clone)]
pub struct Tab {
    session: String,
    target: String,
}

impl Browser {
    /// Starts Chromium headless. Scripts run as in any browser (a scanner that executes
    /// JavaScript); it reaches only `127.0.0.1`.
    pub fn launch() -> Browser {
        let chromium = chromium_path();
        let profile = std::env::temp_dir().join(format!(
            "winback-chromium-{}-{}",
            std::process::id(),
            crate::unique("profile")
        ));
        std::fs::create_dir_all(&profile).expect("a profile folder");
        let mut child = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--disable-client-side-phishing-detection",
                "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
                "--metrics-recording-only",
                "--no-pings",
                "--password-store=basic",
                "--use-mock-keychain",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromium.display()));
        // Chromium writes its DevTools port and the browser's WebSocket path here once it listens.
        let active = profile.join("DevToolsActivePort");
        // Generous: on a loaded two-core machine a cold Chromium start has taken over 30 s.
        let deadline = Instant::now() + Duration::from_secs(120);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&active) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    if let Ok(port) = port.trim().parse::<u16>() {
                        break (port, path.trim().to_string());
                    }
                }
            }
            if Instant::now() >= deadline {
                // Not left running after the test: nothing else would stop it.
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not start its DevTools endpoint within 120 s",
                    chromium.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let ws = WebSocket::connect(port, &path).expect("the DevTools WebSocket");
        Browser {
            child,
            ws,
            next_id: 0,
            events: VecDeque::new(),
            profile,
        }
    }

    /// Calls `method` (in `tab`'s session, or on the browser) and returns its result.
    fn call(&mut self, tab: Option<&Tab>, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(t) = tab {
            msg["sessionId"] = json!(t.session);
        }
        self.ws.send(&msg.to_string()).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("{method}: no answer within 30 s"));
            }
            let Some(text) = self.ws.recv(left).map_err(|e| e.to_string())? else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(v["result"].clone());
            }
            self.events.push_back(v);
        }
    }

    /// Waits up to `wait` for event `method` in `tab`; whether it came.
    fn wait_event(&mut self, tab: &Tab, method: &str, wait: Duration) -> Result<bool, String> {
        let ours = |v: &Value| {
            v["method"] == method && v["sessionId"].as_str() == Some(tab.session.as_str())
        };
        if let Some(i) = self.events.iter().position(ours) {
            self.events.remove(i);
            return Ok(true);
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let Some(text) = self.ws.recv(left).map_err(|e| e.to_string())? else {
                return Ok(false);
            };
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if ours(&v) {
                return Ok(true);
            }
            self.events.push_back(v);
        }
    }

    /// Lets `wait` pass while the browser goes on (pages load, scripts run, forms post).
    pub fn idle(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            match self.ws.recv(left) {
                Ok(Some(text)) => {
                    if let Ok(v) = serde_json::from_str(&text) {
                        self.events.push_back(v);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        self.events.clear();
    }

    /// A new tab.
    pub fn new_tab(&mut self) -> Result<Tab, String> {
        let created = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }))?;
        let target = created["targetId"]
            .as_str()
            .ok_or("no targetId")?
            .to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        )?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_string();
        let tab = Tab { session, target };
        self.call(Some(&tab), "Page.enable", json!({}))?;
        Ok(tab)
    }

    /// Opens `url` in `tab` (as following a link does) and waits for the page to load.
    pub fn open(&mut self, tab: &Tab, url: &str) -> Result<(), String> {
        // A bound so that a page that never loads fails instead of hanging, generous enough for
        // a machine busy with other builds (15 s was exceeded at a load average of 40).
        self.open_within(tab, url, Duration::from_secs(60))
    }

    /// [`Browser::open`], waiting up to `wait` for the page to load.
    fn open_within(&mut self, tab: &Tab, url: &str, wait: Duration) -> Result<(), String> {
        let nav = self.call(Some(tab), "Page.navigate", json!({ "url": url }))?;
        if let Some(e) = nav.get("errorText").and_then(Value::as_str) {
            return Err(format!("{url}: {e}"));
        }
        if !self.wait_event(tab, "Page.loadEventFired", wait)? {
            return Err(format!("{url} did not load within {} s", wait.as_secs()));
        }
        Ok(())
    }

    /// Presses the first element `selector` matches with the mouse, as a person does (a trusted
    /// click at its centre), and waits for the page it leads to.
    pub fn press(&mut self, tab: &Tab, selector: &str) -> Result<(), String> {
        let doc = self.call(Some(tab), "DOM.getDocument", json!({ "depth": 0 }))?;
        let root = doc["root"]["nodeId"].as_u64().ok_or("no document")?;
        let found = self.call(
            Some(tab),
            "DOM.querySelector",
            json!({ "nodeId": root, "selector": selector }),
        )?;
        let node = found["nodeId"].as_u64().filter(|n| *n != 0);
        let node = node.ok_or_else(|| format!("nothing on the page matches {selector}"))?;
        let model = self.call(Some(tab), "DOM.getBoxModel", json!({ "nodeId": node }))?;
        let quad: Vec<f64> = model["model"]["content"]
            .as_array()
            .ok_or("no box")?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        let x = (quad[0] + quad[2] + quad[4] + quad[6]) / 4.0;
        let y = (quad[1] + quad[3] + quad[5] + quad[7]) / 4.0;
        for (kind, buttons) in [("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 0)] {
            self.call(
                Some(tab),
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "buttons": buttons, "clickCount": 1 }),
            )?;
        }
        if !self.wait_event(tab, "Page.loadEventFired", Duration::from_secs(15))? {
            return Err(format!("pressing {selector} led to no page within 15 s"));
        }
        Ok(())
    }

    /// Lays `url` out in `tab` at `width` CSS pixels (below 600, as a phone: the page's
    /// `width=device-width` viewport is that wide) and takes a picture of the whole page.
    pub fn screenshot(&mut self, tab: &Tab, url: &str, width: u32) -> Result<Shot, String> {
        self.call(
            Some(tab),
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )?;
        // A page of a few megabytes of images, on a machine busy with other tests: a generous
        // bound, only so that a browser that never loads it fails instead of hanging.
        self.open_within(tab, url, Duration::from_secs(120))?;
        let size = self.evaluate(
            tab,
            "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]",
        )?;
        let (Some(page_width), Some(height)) = (size[0].as_u64(), size[1].as_u64()) else {
            return Err(format!("no page size: {size}"));
        };
        let shot = self.call(
            Some(tab),
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": page_width.max(u64::from(width)), "height": height, "scale": 1 }
            }),
        )?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().ok_or("no picture")?)
            .map_err(|e| e.to_string())?;
        Ok(Shot {
            png,
            page_width,
            height,
        })
    }

    /// The value of the JavaScript `expression` in `tab`'s page.
    pub fn evaluate(&mut self, tab: &Tab, expression: &str) -> Result<Value, String> {
        let out = self.call(
            Some(tab),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        )?;
        if let Some(e) = out.get("exceptionDetails") {
            return Err(format!("{expression}: {e}"));
        }
        Ok(out["result"]["value"].clone())
    }

    /// The tab's page as HTML.
    pub fn html(&mut self, tab: &Tab) -> Result<String, String> {
        let doc = self.call(Some(tab), "DOM.getDocument", json!({ "depth": 0 }))?;
        let root = doc["root"]["nodeId"].as_u64().ok_or("no document")?;
        let html = self.call(Some(tab), "DOM.getOuterHTML", json!({ "nodeId": root }))?;
        Ok(html["outerHTML"].as_str().unwrap_or_default().to_string())
    }

    /// Closes `tab`.
    pub fn close(&mut self, tab: Tab) -> Result<(), String> {
        self.call(
            None,
            "Target.closeTarget",
            json!({ "targetId": tab.target }),
        )
        .map(|_| ())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .ws
            .send(&json!({ "id": 0, "method": "Browser.close" }).to_string());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The `href` of every link in an email's HTML, unescaped (`&amp;` → `&`).
pub fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|h| h.replace("&amp;", "&"))
        .collect()
}
