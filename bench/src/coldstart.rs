//! Cold start: stripped binary sizes, and process start → ready → first event answered under a
//! Lambda Runtime API emulator on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::report::{Figure, Figures, Notes, Target};
use crate::{tls_front, BenchError};

const BENCH: &str = "cold start";
const RUNS: usize = 7;

/// What the emulator saw, in order.
#[derive(Debug)]
enum Seen {
    /// The runtime asked for its first event: init is done.
    Ready(Instant),
    /// The runtime answered the event (`/response`, or `/error` with the body).
    Answered(Instant, bool, String),
    /// The runtime reported an init error.
    InitError(String),
}

/// Reads one HTTP/1.1 request: method, path, body.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, String, String)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body).ok()?;
    Some((method, path, String::from_utf8_lossy(&body).into_owned()))
}

fn serve(stream: TcpStream, event: Arc<Mutex<Option<String>>>, seen: mpsc::Sender<Seen>) {
    let Ok(write) = stream.try_clone() else {
        return;
    };
    let mut write = write;
    let mut reader = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut reader) {
        let now = Instant::now();
        let reply = if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let next = event.lock().expect("event").take();
            let Some(payload) = next else {
                // The one event was delivered: hold the runtime here until it is stopped.
                std::thread::sleep(Duration::from_secs(30));
                return;
            };
            let _ = seen.send(Seen::Ready(now));
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
                + 60_000;
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: bench-0001\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: \
                 arn:aws:lambda:us-east-1:000000000000:function:bench\r\nLambda-Runtime-Trace-Id: \
                 Root=1-00000000-000000000000000000000000;Sampled=0\r\nContent-Length: {}\r\n\r\n{payload}",
                payload.len()
            )
        } else if path.ends_with("/response") || path.ends_with("/error") {
            let _ = seen.send(Seen::Answered(now, path.ends_with("/response"), body));
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                .to_string()
        } else if path.ends_with("/init/error") {
            let _ = seen.send(Seen::InitError(body));
            "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}".to_string()
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
        };
        if write.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// One cold start: (start → ready, start → answered) in milliseconds.
fn once(binary: &Path, env: &[(String, String)], event: &str) -> Result<(f64, f64), BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let payload = Arc::new(Mutex::new(Some(event.to_string())));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let payload = payload.clone();
            let tx = tx.clone();
            std::thread::spawn(move || serve(stream, payload, tx));
        }
    });
    let started = Instant::now();
    let mut child = Command::new(binary)
        // As in Lambda: the roots come from the system's bundle unless `env` names one.
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut ready = None;
    let outcome = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Seen::Ready(at)) => ready = Some(at),
            Ok(Seen::Answered(at, ok, body)) => break Ok((at, ok, body)),
            Ok(Seen::InitError(body)) => break Err(format!("init error: {body}")),
            Err(_) => break Err("no answer within 30 s".to_string()),
        }
    };
    let _ = child.kill();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let _ = child.wait();
    let name = binary.display();
    let (answered, ok, body) = outcome.map_err(|why| {
        BenchError::Setup(format!("{name}: {why}; its log ends: {}", tail(&stderr)))
    })?;
    if !ok {
        return Err(BenchError::Setup(format!(
            "{name} answered its first event with an error: {body}"
        )));
    }
    let ready = ready
        .ok_or_else(|| BenchError::Setup(format!("{name} answered without asking for an event")))?;
    Ok((
        ready.duration_since(started).as_secs_f64() * 1000.0,
        answered.duration_since(started).as_secs_f64() * 1000.0,
    ))
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn function_env(name: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("TABLE_NAME", "winback-local"),
        ("EVENT_BUS_NAME", "winback-local"),
        ("SENDER_ADDRESS", "winback@example.com"),
        (
            "PUBLIC_BASE_URL",
            "http://127.0.0.1:9000/lambda-url/webhook",
        ),
        ("CAMPAIGN", "example"),
        ("WINBACK_WEBHOOK_KEYS", "local-dev-key"),
        ("WINBACK_LINK_KEY", "local-link-key"),
        ("SES_MAX_SEND_RATE", "14"),
        ("SENDER_MAX_CONCURRENCY", "1"),
        ("RUST_LOG", "info"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn first_event(function: &str) -> String {
    let now = chrono::Utc::now();
    match function {
        "scheduler" => serde_json::json!({
            "version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "000000000000", "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": "us-east-1", "resources": [], "detail": {}
        })
        .to_string(),
        "sender" => serde_json::json!({"Records": []}).to_string(),
        _ => {
            let body = serde_json::json!({
                "event_id": format!("bench-cold-{}", now.timestamp_nanos_opt().unwrap_or_default()),
                "customer_id": "bench-cold-start", "type": "login",
                "occurred_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
            .to_string();
            let sig = shared::signing::sign_webhook(b"local-dev-key", now.timestamp(), body.as_bytes());
            serde_json::json!({
                "version": "2.0", "routeKey": "$default", "rawPath": "/v1/activity", "rawQueryString": "",
                "headers": {"host": "127.0.0.1", "content-type": "application/json", "winback-signature": sig},
                "requestContext": {"domainName": "127.0.0.1", "http": {"method": "POST", "path": "/v1/activity",
                    "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
                    "requestId": "bench", "routeKey": "$default", "stage": "$default",
                    "timeEpoch": now.timestamp_millis()},
                "isBase64Encoded": false, "body": body
            })
            .to_string()
        }
    }
}

/// Sizes always; start-up times when the local stack's environment is there.
pub fn run(out: &mut Vec<Figure>, notes: &mut Notes, release: &Path) -> Result<(), BenchError> {
    let functions = ["scheduler", "sender", "webhook"];
    for f in functions {
        let path = release.join(f);
        let size = std::fs::metadata(&path)
            .map_err(|e| {
                BenchError::Setup(format!(
                    "{}: {e}: build it with `cargo build --release -p winback-{f}`",
                    path.display()
                ))
            })?
            .len();
        Figures::new(BENCH, out).held(
            format!("{f}: stripped release binary"),
            size as f64 / 1e6,
            "MB",
            Target::AtMost(10.0),
        );
    }
    let over: Vec<String> = out
        .iter()
        .filter(|f| f.bench == BENCH && f.met() == Some(false))
        .map(|f| {
            format!(
                "{} ({:.1} MB)",
                f.name.split(':').next().unwrap_or(""),
                f.value
            )
        })
        .collect();
    let verdict = if over.is_empty() {
        "All three binaries are within the 10 MB target.".to_string()
    } else {
        format!("**Size target missed** by {}.", over.join(", "))
    };
    notes.push((
        BENCH,
        format!(
            "{verdict} How: fat LTO, one codegen unit, stripped symbols; one HTTP client (hyper 1, \
             rustls 0.23 with ring, built by `aws::https_client()` instead of the SDK's default \
             aws-lc client); SDK config from the environment only, which drops the credential chain \
             (STS, SSO, profile files) from the functions; a `Targets` log filter instead of the \
             regex-based `EnvFilter`, and the Lambda runtime without its default subscriber; time \
             zones from jiff's bundled database (about 200 KB of bytes) instead of chrono-tz, whose \
             transition tables took about 1.5 MB of relocated data in each binary that converts \
             times; per-package `opt-level` \"z\"/\"s\" for SDK, HTTP, TLS and start-up code, at no \
             cost to the figures above, and \"s\" for the webhook's own crate, whose requests compute \
             little between network calls (10.28 to 9.48 MB; the in-process request figure above \
             held); multipart fields read as UTF-8 without a charset decoder, which kept every legacy \
             encoding's tables in the webhook (10.46 to 10.28 MB). Earlier builds of this history, scheduler/sender/webhook: \
             14.4/16.8/15.3 MB at first; 11.1/13.6/12.0 after the environment-only config and \
             per-package opt-levels; 8.1/10.5/8.9 after ring and the regex-free filter. The time-zone \
             change then took about 1.5 MB off the sender and added about 0.3 MB to the scheduler and \
             webhook, which only validate zone names and now carry the bundled database; the table \
             above has this build's sizes. `opt-level = \"s\"` for the whole build is not used: it halved the domain \
             and render speed and doubled start-up. Not done: a non-PIE build (fewer relocations, but \
             no ASLR)."
        ),
    ));
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err() {
        notes.push((
            BENCH,
            "Start-up times were not measured: the local stack's environment was not set.".into(),
        ));
        return Ok(());
    }
    // Each function twice: against the endpoints as they are, then with every AWS endpoint
    // behind TLS, so that the connections opened at init include the handshakes, as in AWS.
    let upstreams: Vec<(&str, String)> = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
        .into_iter()
        .filter_map(|v| std::env::var(v).ok().map(|url| (v, url)))
        .collect();
    let fronts = tls_front::start(&upstreams)?;
    let modes: [(&str, &[(String, String)]); 2] = [("", &[]), (", over TLS", &fronts.env)];
    let mut fig = Figures::new(BENCH, out);
    for (over, extra) in modes {
        for f in functions {
            let (ready, answered) = starts(release, f, extra)?;
            fig.held(
                format!("{f}: process start → ready for the first event{over} (median of {RUNS})"),
                ready,
                "ms",
                Target::AtMost(25.0),
            );
            fig.info(
                format!("{f}: process start → first event answered{over} (median of {RUNS})"),
                answered,
                "ms",
            );
        }
    }
    Ok(())
}

/// Medians of [`RUNS`] cold starts of `function` (after one unmeasured start): start → ready,
/// start → answered, in milliseconds. `extra` is added to the function's environment.
fn starts(
    release: &Path,
    function: &str,
    extra: &[(String, String)],
) -> Result<(f64, f64), BenchError> {
    let path: PathBuf = release.join(function);
    let mut env = function_env(function);
    env.extend(extra.iter().cloned());
    once(&path, &env, &first_event(function))?;
    let mut ready = Vec::new();
    let mut answered = Vec::new();
    for _ in 0..RUNS {
        let (r, a) = once(&path, &env, &first_event(function))?;
        ready.push(r);
        answered.push(a);
    }
    Ok((median(ready), median(answered)))
}
