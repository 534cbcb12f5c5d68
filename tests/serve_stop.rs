//! `album serve` stops cleanly on SIGTERM (finding "SIGTERM kills instead of stopping
//! cleanly"): a real server process on 127.0.0.1 is sent SIGTERM, says it is stopping,
//! stops its workers and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_cleanly() {
    let temp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_album"))
        .args(["serve", "--addr", "127.0.0.1:0", "--no-model", "--no-faces"])
        .args(["--workers", "1", "--data-dir"])
        .arg(temp.path().join("album"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("http://"));
    assert!(
        listening.is_some(),
        "the server never said where it listens"
    );

    let signal = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signal.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("still running 30 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "exit {status:?}; output {rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}
