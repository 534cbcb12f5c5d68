//! `album bench face-index`: what placing one face costs as a library grows, with the
//! album's face index (an HNSW graph, `album_faces::hnsw`) beside the scan the cluster
//! job ran before it (a distance to every earlier face).
//!
//! For each library size a library of synthetic descriptors (`album_faces::synthetic`:
//! tight groups, one per person, `--faces-per-person` each) is indexed, then `--queries`
//! new faces of the same people are placed by the density rule the album uses
//! (`FACE_RULE`), each by both methods; every placement is compared, and the timed
//! passes repeat `--repeats` times (median and range reported). Quality on real faces
//! is `album bench people`'s (BCubed F1 on LFW through the service).

use std::path::PathBuf;
use std::time::Instant;

use album_faces::cluster::Placement;
use album_faces::embedder::Descriptor;
use album_faces::hnsw::{Hnsw, HnswParams};
use album_faces::synthetic::clustered;
use album_serving::service::people::FACE_RULE;
use anyhow::{Context, bail};

/// Time to place one face by the album's rule at growing library sizes: the HNSW face
/// index beside a scan of every earlier face.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  album bench face-index --sizes 1000,10000,100000 --out experiments/face-index-scale")]
pub struct FaceIndexBenchArgs {
    /// Faces already in the library, one measurement per size.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 10000, 100000])]
    sizes: Vec<usize>,
    /// New faces placed per measurement.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Faces per synthetic person (LFW's people with several photos have about 10).
    #[arg(long, default_value_t = 10)]
    faces_per_person: usize,
    /// Timed passes per method and size; median and range are reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Links per node of the graph (`HnswParams::m`).
    #[arg(long, default_value_t = HnswParams::default().m)]
    m: usize,
    /// Candidates kept while the graph is built.
    #[arg(long, default_value_t = HnswParams::default().ef_construction)]
    ef_construction: usize,
    /// Candidates kept by a search.
    #[arg(long, default_value_t = HnswParams::default().ef_search)]
    ef_search: usize,
    /// Seed of the synthetic descriptors.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Folder for results.csv and summary.md [default: print only].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One size's figures.
struct SizeResult {
    faces: usize,
    build_s: f64,
    scan_us: Vec<f64>,
    index_us: Vec<f64>,
    same_placements: usize,
    queries: usize,
}

pub fn run(args: FaceIndexBenchArgs) -> anyhow::Result<()> {
    if args.sizes.is_empty() || args.queries == 0 || args.repeats == 0 {
        bail!("--sizes, --queries and --repeats need at least one each");
    }
    let mut results = Vec::new();
    for &size in &args.sizes {
        let people = size.div_ceil(args.faces_per_person.max(1));
        let all = clustered(size + args.queries, people, args.seed);
        let (library, queries) = all.split_at(size);
        // everyone in the library already has a person (their synthetic one)
        let persons: Vec<Option<usize>> = (0..size).map(|i| Some(i % people)).collect();
        eprintln!("face-index: {size} faces, {people} people: building the index");
        let started = Instant::now();
        let mut index = Hnsw::new(HnswParams {
            m: args.m,
            ef_construction: args.ef_construction,
            ef_search: args.ef_search,
            ..HnswParams::default()
        });
        for (id, face) in library.iter().enumerate() {
            index.insert(id, *face);
        }
        let build_s = started.elapsed().as_secs_f64();
        let mut scan_us = Vec::new();
        let mut index_us = Vec::new();
        let mut same = 0;
        for pass in 0..args.repeats {
            let (by_scan, scan) = timed(queries, |q| FACE_RULE.place(q, library, &persons));
            let (by_index, indexed) =
                timed(queries, |q| FACE_RULE.place_indexed(q, &index, &persons));
            scan_us.push(scan);
            index_us.push(indexed);
            if pass == 0 {
                same = by_scan
                    .iter()
                    .zip(&by_index)
                    .filter(|(a, b)| a == b)
                    .count();
            }
        }
        let result = SizeResult {
            faces: size,
            build_s,
            scan_us,
            index_us,
            same_placements: same,
            queries: queries.len(),
        };
        println!("{}", line(&result));
        results.push(result);
    }
    let table = summary(&args, &results);
    println!("\n{table}");
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        std::fs::write(out.join("summary.md"), &table)
            .with_context(|| format!("writing {}", out.join("summary.md").display()))?;
        std::fs::write(out.join("results.csv"), csv(&results))
            .with_context(|| format!("writing {}", out.join("results.csv").display()))?;
        println!("written: {}/summary.md, results.csv", out.display());
    }
    Ok(())
}

/// Places every query with `place`; returns the placements and µs per face.
fn timed(
    queries: &[Descriptor],
    place: impl Fn(&Descriptor) -> Placement<usize>,
) -> (Vec<Placement<usize>>, f64) {
    let started = Instant::now();
    let placements: Vec<Placement<usize>> = queries.iter().map(place).collect();
    let us = started.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
    (placements, us)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn range(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn line(r: &SizeResult) -> String {
    format!(
        "{:>7} faces: scan {:>9.1} µs/face, index {:>7.1} µs/face ({:.0}x), build {:.1} s, {}/{} placements as the scan's",
        r.faces,
        median(&r.scan_us),
        median(&r.index_us),
        median(&r.scan_us) / median(&r.index_us),
        r.build_s,
        r.same_placements,
        r.queries
    )
}

fn summary(args: &FaceIndexBenchArgs, results: &[SizeResult]) -> String {
    let mut out = format!(
        "# Placing one face as the library grows\n\n\
         `album bench face-index --sizes {} --queries {} --faces-per-person {} --repeats {} --seed {} \
         --m {} --ef-construction {} --ef-search {}` at {}. Synthetic descriptors, {} faces per \
         person; the album's rule (link distance {}, people of {}+ faces). µs per placed face: \
         median of {} passes [min–max].\n\n\
         | faces | scan µs/face | index µs/face | scan / index | index build s | placements as the scan's |\n\
         |---:|---:|---:|---:|---:|---:|\n",
        args.sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        args.queries,
        args.faces_per_person,
        args.repeats,
        args.seed,
        args.m,
        args.ef_construction,
        args.ef_search,
        revision(),
        args.faces_per_person,
        FACE_RULE.max_distance,
        FACE_RULE.min_faces,
        args.repeats,
    );
    for r in results {
        let (scan_lo, scan_hi) = range(&r.scan_us);
        let (index_lo, index_hi) = range(&r.index_us);
        out.push_str(&format!(
            "| {} | {:.1} [{:.1}–{:.1}] | {:.1} [{:.1}–{:.1}] | {:.0}× | {:.1} | {}/{} |\n",
            r.faces,
            median(&r.scan_us),
            scan_lo,
            scan_hi,
            median(&r.index_us),
            index_lo,
            index_hi,
            median(&r.scan_us) / median(&r.index_us),
            r.build_s,
            r.same_placements,
            r.queries
        ));
    }
    out
}

fn csv(results: &[SizeResult]) -> String {
    let mut out = String::from("faces,method,pass,us_per_face\n");
    for r in results {
        for (method, times) in [("scan", &r.scan_us), ("hnsw", &r.index_us)] {
            for (pass, us) in times.iter().enumerate() {
                out.push_str(&format!("{},{method},{pass},{us:.3}\n", r.faces));
            }
        }
    }
    out
}

/// The git revision measured, marked when the tree had changes.
fn revision() -> String {
    let (revision, dirty) = album_training::provenance::git_state();
    if dirty {
        format!("{revision} (with uncommitted changes)")
    } else {
        revision
    }
}
