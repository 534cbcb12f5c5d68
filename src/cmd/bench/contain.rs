//! `album bench contain`: hostile users against a real `album serve` held to an
//! address-space limit, while a normal user keeps listing her photos.
//!
//! It starts `album serve` as a child process under `ulimit -v` (2 GiB by default) on a
//! fresh data folder. The first user (the admin) uploads a few photos; she adds a
//! second user, who uploads small photos and one photo of 100 megapixels. Then, all at
//! once:
//! 1. the **GIF bomb**: one `POST /api/gifs` of 100 × the 100-megapixel photo;
//! 2. a **sign-in flood**: 64 concurrent sign-ins with a wrong password;
//! 3. **GIF floods**: 16 concurrent GIFs of 100 frames each;
//! 4. **large uploads**: 8 concurrent uploads of 100-megapixel photos (the same
//!    pixels, each with different bytes after its end-of-image marker, as phones write);
//!
//! while the admin lists her photos every 100 ms. It prints what each attack was
//! answered, the list request's latencies beside its latency before the attacks, and
//! the server's peak memory; it fails when the server died or a list request took a
//! second or more. Busy answers (503, 429) are the containment working, not failures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Mutex;

use super::load::{Server, ServerOptions};
use super::{RunRecord, is_photo, locate, sorted_entries};

/// Attack a real `album serve` held to an address-space limit (GIF bombs, sign-in
/// floods, concurrent 100-megapixel uploads) while a normal user lists her photos.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album bench contain                          # the issue's run: 2 GiB, 64/16/8 at once
  album bench contain --no-faces --large-side 6000 --json contain.json")]
pub struct ContainBenchArgs {
    /// The server's address-space limit (`ulimit -v`), in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    address_space_mib: u64,
    /// Side of the large square photos, in px (10,000: 100 megapixels).
    #[arg(long, value_name = "PX", default_value_t = 10_000)]
    large_side: u32,
    /// Concurrent wrong-password sign-ins.
    #[arg(long, default_value_t = 64)]
    sign_ins: usize,
    /// Concurrent 100-frame GIF requests.
    #[arg(long, default_value_t = 16)]
    gif_requests: usize,
    /// Concurrent uploads of a large photo.
    #[arg(long, default_value_t = 8)]
    large_uploads: usize,
    /// Folder of class sub-folders (the users' small photos).
    #[arg(long, default_value = "../shared/datasets/five-class")]
    photos: PathBuf,
    #[command(flatten)]
    server: ServerOptions,
    /// Also write the figures as JSON here.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

/// A list request slower than this fails the run.
const LIST_LIMIT: Duration = Duration::from_secs(1);

pub fn run(args: ContainBenchArgs) -> anyhow::Result<()> {
    super::RunRecord::of_this_run(); // the revision as the run starts
    if args.large_side < 64 || args.gif_requests == 0 || args.large_uploads == 0 {
        bail!(album_dataset::Error::InvalidArgument(
            "--large-side must be at least 64, --gif-requests and --large-uploads positive".into()
        ));
    }
    let small = small_photos(&locate(&args.photos), 40)?;
    eprintln!(
        "bench contain: encoding a {0}×{0} JPEG for the large photos",
        args.large_side
    );
    let large = large_jpeg(args.large_side)?;
    let temp = tempfile::tempdir().context("creating a temporary folder")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = runtime.block_on(attack(&args, &small, &large, temp.path()))?;
    report.print(&args);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    report.verdict()
}

/// The first `n` photos of the set, taken from each class in turn.
fn small_photos(root: &Path, n: usize) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let classes: Vec<PathBuf> = sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    let mut per_class: Vec<std::vec::IntoIter<PathBuf>> = classes
        .iter()
        .map(|dir| {
            sorted_entries(dir).map(|files| {
                let photos: Vec<PathBuf> = files.into_iter().filter(|p| is_photo(p)).collect();
                photos.into_iter()
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut photos = Vec::new();
    while photos.len() < n {
        let before = photos.len();
        for files in &mut per_class {
            if let Some(path) = files.next()
                && photos.len() < n
            {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let name = path
                    .file_name()
                    .map_or("photo.jpg".into(), |n| n.to_string_lossy().into_owned());
                photos.push((name, bytes));
            }
        }
        if photos.len() == before {
            bail!("{} holds fewer than {n} photos", root.display());
        }
    }
    Ok(photos)
}

/// A smooth square photo as JPEG (a few MiB for 100 megapixels).
fn large_jpeg(side: u32) -> anyhow::Result<Vec<u8>> {
    let image = image::RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([
            (x * 255 / side) as u8,
            (y * 255 / side) as u8,
            ((x ^ y) % 64) as u8,
        ])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85)
        .encode_image(&image)
        .context("encoding the large photo")?;
    Ok(bytes)
}

/// The large photo's bytes with `tag` written after its end-of-image marker.
fn with_trailer(jpeg: &[u8], tag: usize) -> Vec<u8> {
    let mut bytes = jpeg.to_vec();
    bytes.extend(format!("\ncontain-{tag}\n").as_bytes());
    bytes
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

/// `album serve` under `ulimit -v`: bash sets the limit, then becomes the server.
fn serve_command(args: &ContainBenchArgs, data_dir: &Path) -> anyhow::Result<Command> {
    let server = args.server.command(data_dir)?;
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(r#"ulimit -v "$1" || exit 3; shift; exec "$@""#)
        .arg("contain")
        .arg((args.address_space_mib * 1024).to_string())
        .arg(server.get_program())
        .args(server.get_args());
    Ok(command)
}

/// What one kind of request was answered: a count per status ("transport" when the
/// connection failed) and the slowest answer.
#[derive(Debug, Default, Clone, Serialize)]
struct Answers {
    statuses: BTreeMap<String, usize>,
    slowest_s: f64,
}

impl Answers {
    fn record(&mut self, outcome: &Result<u16, String>, took: Duration) {
        let key = match outcome {
            Ok(status) => status.to_string(),
            Err(_) => "transport".to_owned(),
        };
        *self.statuses.entry(key).or_default() += 1;
        self.slowest_s = self.slowest_s.max(took.as_secs_f64());
    }

    fn summary(&self) -> String {
        self.statuses
            .iter()
            .map(|(status, n)| format!("{n} × {status}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Serialize)]
struct Latencies {
    count: usize,
    median_ms: f64,
    p95_ms: f64,
    max_ms: f64,
}

impl Latencies {
    fn of(mut times: Vec<Duration>) -> Latencies {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| {
            times
                .get(((times.len() as f64 - 1.0) * q).round() as usize)
                .map_or(f64::NAN, |d| ms(*d))
        };
        Latencies {
            count: times.len(),
            median_ms: at(0.5),
            p95_ms: at(0.95),
            max_ms: times.last().map_or(f64::NAN, |d| ms(*d)),
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    run: RunRecord,
    address_space_mib: u64,
    large_megapixels: f64,
    attacks: BTreeMap<String, Answers>,
    list_before: Latencies,
    list_during: Latencies,
    list_errors: usize,
    server_survived: bool,
    server_peak_rss_mib: Option<f64>,
    server_peak_address_space_mib: Option<f64>,
    attack_seconds: f64,
}

async fn attack(
    args: &ContainBenchArgs,
    small: &[(String, Vec<u8>)],
    large: &[u8],
    temp: &Path,
) -> anyhow::Result<Report> {
    let data_dir = temp.join("album");
    let log = temp.join("serve.log");
    let server = Server::start(serve_command(args, &data_dir)?, &log)?;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1800))
        .build()?;

    let owner = account(&client, &base, None, "owner").await?;
    let attacker = account(&client, &base, Some(&owner), "mallory").await?;
    let (owners, attackers) = small.split_at(small.len() / 2);
    upload(&client, &base, &owner, owners).await?;
    let frame_ids = upload(&client, &base, &attacker, attackers).await?;
    let large_id = upload(
        &client,
        &base,
        &attacker,
        &[("large.jpg".into(), large.to_vec())],
    )
    .await?
    .first()
    .copied()
    .context("the large photo was not stored")?;

    let mut before = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        list(&client, &base, &owner).await?;
        before.push(started.elapsed());
    }

    eprintln!(
        "bench contain: attacking (see {} for the server's log)",
        log.display()
    );
    let answers: Arc<Mutex<BTreeMap<String, Answers>>> = Arc::default();
    let mut attacks = tokio::task::JoinSet::new();
    let spawn = |attacks: &mut tokio::task::JoinSet<()>,
                 kind: &'static str,
                 request: reqwest::RequestBuilder| {
        let answers = answers.clone();
        attacks.spawn(async move {
            let started = Instant::now();
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    Ok(status)
                }
                Err(e) => Err(e.to_string()),
            };
            let took = started.elapsed();
            answers
                .lock()
                .await
                .entry(kind.to_owned())
                .or_default()
                .record(&outcome, took);
        });
    };
    let started = Instant::now();
    spawn(
        &mut attacks,
        "GIF bomb: 100 × the large photo",
        client
            .post(format!("{base}/api/gifs"))
            .bearer_auth(&attacker)
            .json(&json!({"photo_ids": vec![large_id; 100], "size": 1024})),
    );
    for _ in 0..args.sign_ins {
        spawn(
            &mut attacks,
            "sign-in flood (wrong password)",
            client
                .post(format!("{base}/api/sessions"))
                .json(&json!({"username": "mallory", "password": "not the password"})),
        );
    }
    for g in 0..args.gif_requests {
        // a different order each, so no two are the same GIF
        let ids: Vec<i64> = (0..100)
            .map(|i| frame_ids[(i * (g + 1) + g) % frame_ids.len()])
            .collect();
        spawn(
            &mut attacks,
            "GIF flood: 100 frames each",
            client
                .post(format!("{base}/api/gifs"))
                .bearer_auth(&attacker)
                .json(&json!({"photo_ids": ids})),
        );
    }
    for u in 0..args.large_uploads {
        let part = reqwest::multipart::Part::bytes(with_trailer(large, u))
            .file_name(format!("large-{u}.jpg"))
            .mime_str("image/jpeg")?;
        spawn(
            &mut attacks,
            "large uploads",
            client
                .post(format!("{base}/api/photos"))
                .bearer_auth(&attacker)
                .multipart(reqwest::multipart::Form::new().part("photo", part)),
        );
    }

    let pid = server.child.id();
    let mut during = Vec::new();
    let mut list_errors = 0;
    while !attacks.is_empty() {
        let request_started = Instant::now();
        match list(&client, &base, &owner).await {
            Ok(()) => during.push(request_started.elapsed()),
            Err(e) => {
                list_errors += 1;
                eprintln!("bench contain: a list request failed: {e:#}");
            }
        }
        while attacks.try_join_next().is_some() {}
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attack_seconds = started.elapsed().as_secs_f64();
    let (peak_rss, peak_address_space) = peak_memory(pid);
    let mut server = server;
    let survived = server.child.try_wait()?.is_none()
        && client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
    if survived {
        server.stop()?;
    }
    let attacks = Arc::try_unwrap(answers)
        .map_err(|_| anyhow::anyhow!("an attack is still running"))?
        .into_inner();
    Ok(Report {
        run: RunRecord::of_this_run(),
        address_space_mib: args.address_space_mib,
        large_megapixels: f64::from(args.large_side).powi(2) / 1e6,
        attacks,
        list_before: Latencies::of(before),
        list_during: Latencies::of(during),
        list_errors,
        server_survived: survived,
        server_peak_rss_mib: peak_rss,
        server_peak_address_space_mib: peak_address_space,
        attack_seconds,
    })
}

/// Signs `name` up (by `admin` when given: sign-up is closed to anyone else) and in.
async fn account(
    client: &reqwest::Client,
    base: &str,
    admin: Option<&str>,
    name: &str,
) -> anyhow::Result<String> {
    let credentials = json!({"username": name, "password": "contain the damage"});
    let mut request = client.post(format!("{base}/api/users")).json(&credentials);
    if let Some(token) = admin {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.context("POST /api/users")?;
    if !response.status().is_success() {
        bail!("adding {name}: {}", response.status());
    }
    let response = client
        .post(format!("{base}/api/sessions"))
        .json(&credentials)
        .send()
        .await
        .context("POST /api/sessions")?;
    if !response.status().is_success() {
        bail!("signing {name} in: {}", response.status());
    }
    let session: serde_json::Value = response.json().await?;
    session["token"]
        .as_str()
        .map(str::to_owned)
        .context("the session has no token")
}

/// Uploads the photos in one request; the stored photos' ids.
async fn upload(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    photos: &[(String, Vec<u8>)],
) -> anyhow::Result<Vec<i64>> {
    let mut form = reqwest::multipart::Form::new();
    for (name, bytes) in photos {
        let part = reqwest::multipart::Part::bytes(bytes.clone())
            .file_name(name.clone())
            .mime_str("image/jpeg")?;
        form = form.part("photo", part);
    }
    let response = client
        .post(format!("{base}/api/photos"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .context("POST /api/photos")?;
    if !response.status().is_success() {
        bail!(
            "uploading {} photos: {}",
            photos.len(),
            response.text().await.unwrap_or_default()
        );
    }
    let report: album_serving::service::photos::UploadReport = response.json().await?;
    Ok(report
        .results
        .iter()
        .filter_map(|r| r.photo.as_ref().map(|p| p.id))
        .collect())
}

/// One page of the user's photos.
async fn list(client: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<()> {
    let response = client
        .get(format!("{base}/api/photos?limit=50"))
        .bearer_auth(token)
        .send()
        .await
        .context("GET /api/photos")?;
    let status = response.status();
    let _ = response.bytes().await?;
    if !status.is_success() {
        bail!("GET /api/photos: {status}");
    }
    Ok(())
}

/// The server's peak resident memory and peak address space so far, in MiB (Linux).
fn peak_memory(pid: u32) -> (Option<f64>, Option<f64>) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map(|kib| kib / 1024.0)
    };
    (field("VmHWM:"), field("VmPeak:"))
}

impl Report {
    fn print(&self, args: &ContainBenchArgs) {
        println!(
            "album serve under ulimit -v {} MiB; large photos {:.0} megapixels; {} workers{}{}",
            self.address_space_mib,
            self.large_megapixels,
            args.server.workers,
            if args.server.no_model {
                ", no model"
            } else {
                ""
            },
            if args.server.no_faces {
                ", no faces"
            } else {
                ""
            },
        );
        println!("{:<34} {:>9}  answers", "attack", "slowest");
        for (kind, answers) in &self.attacks {
            println!(
                "{kind:<34} {:>7.1} s  {}",
                answers.slowest_s,
                answers.summary()
            );
        }
        let row = |name: &str, l: &Latencies| {
            println!(
                "{name:<34} n {:>4}, median {:>6.1} ms, p95 {:>6.1} ms, max {:>6.1} ms",
                l.count, l.median_ms, l.p95_ms, l.max_ms
            );
        };
        row("normal user's list, before", &self.list_before);
        row("normal user's list, during", &self.list_during);
        println!(
            "list errors {}; attacks took {:.1} s; server survived: {}; peak RSS {}, peak address space {}",
            self.list_errors,
            self.attack_seconds,
            if self.server_survived { "yes" } else { "NO" },
            self.server_peak_rss_mib
                .map_or("?".into(), |m| format!("{m:.0} MiB")),
            self.server_peak_address_space_mib
                .map_or("?".into(), |m| format!("{m:.0} MiB")),
        );
    }

    fn verdict(&self) -> anyhow::Result<()> {
        if !self.server_survived {
            bail!("the server did not survive the attacks");
        }
        if self.list_errors > 0 {
            bail!("{} list requests failed", self.list_errors);
        }
        if self.list_during.max_ms >= LIST_LIMIT.as_secs_f64() * 1000.0 {
            bail!(
                "a list request took {:.0} ms during the attacks (limit {} ms)",
                self.list_during.max_ms,
                LIST_LIMIT.as_millis()
            );
        }
        Ok(())
    }
}
