//! `album models`: the model registry, with parameter and MAC counts as configured and at
//! the published full size.

use album_training::models::{ModelConfig, ModelInfo, REGISTRY, trainable_params};
use burn::tensor::Device;

/// List the models `album train` can build: parameters and multiply–accumulates at the
/// given size, width and class count, and at the published full size (1,000 classes, width
/// 1, 224 px) beside the papers' own figures.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album models
  album models --size 64 --width 0.25")]
pub struct ModelsArgs {
    /// Input side in pixels.
    #[arg(long, default_value_t = 224)]
    size: usize,
    /// Width multiplier.
    #[arg(long, default_value_t = 1.0)]
    width: f32,
    /// Number of classes.
    #[arg(long, default_value_t = 5)]
    classes: usize,
}

/// The table fits a 100-column terminal; citations are wrapped to it below the table.
const COLUMNS: usize = 100;

pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    for line in table(&args)? {
        println!("{line}");
    }
    Ok(())
}

/// Parameters and GMACs of one model at one size.
struct Counts {
    params: usize,
    gmacs: f64,
}

fn counts(name: &str, classes: usize, width: f32, size: usize) -> anyhow::Result<Counts> {
    // Parameters are created lazily, so building even VGG16 here allocates nothing.
    let model = ModelConfig::new(name.to_owned())
        .with_num_classes(classes)
        .with_width(width)
        .init(&Device::flex())?;
    Ok(Counts {
        params: trainable_params(&model),
        gmacs: model.macs(size) as f64 / 1e9,
    })
}

fn table(args: &ModelsArgs) -> anyhow::Result<Vec<String>> {
    // The "as configured" group spans the first two number columns (11 + 1 + 8 + 3).
    let group = |left: String, right: &str| format!("{:<15} {left:<23}{right}", "");
    let mut lines = vec![
        group("as configured".to_owned(), "full size"),
        group(format!("{} classes", args.classes), "1,000 classes"),
        group(
            format!("width {}, {} px", args.width, args.size),
            "width 1, 224 px",
        ),
        format!(
            "{:<15} {:>11} {:>8}   {:>11} {:>10} {:>8} {:>10}",
            "model", "params", "GMACs", "params", "published", "GMACs", "published"
        ),
    ];
    for info in REGISTRY {
        let here = counts(info.name, args.classes, args.width, args.size)?;
        let full = counts(info.name, 1000, 1.0, 224)?;
        lines.push(format!(
            "{:<15} {:>9.2} M {:>8.3}   {:>9.2} M {:>10} {:>8.2} {:>10}",
            info.name,
            here.params as f64 / 1e6,
            here.gmacs,
            full.params as f64 / 1e6,
            published_params(info),
            full.gmacs,
            info.published_gmacs
                .map_or("-".to_owned(), |g| format!("{g:.2}")),
        ));
    }
    lines.push(String::new());
    lines.push("papers:".to_owned());
    for info in REGISTRY {
        lines.extend(wrap(&format!("  {:<15}", info.name), info.paper, COLUMNS));
    }
    Ok(lines)
}

fn published_params(info: &ModelInfo) -> String {
    info.published_params
        .map_or("-".to_owned(), |p| format!("{:.1} M", p as f64 / 1e6))
}

/// `text` after `lead`, wrapped at word boundaries to `columns`, continuation lines
/// indented under the first.
fn wrap(lead: &str, text: &str, columns: usize) -> Vec<String> {
    let indent = " ".repeat(lead.chars().count());
    let mut lines = Vec::new();
    let mut line = lead.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > columns {
            lines.push(std::mem::replace(&mut line, indent.clone()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn album_models_fits_100_columns_and_compares_like_with_like() {
        let args = ModelsArgs {
            size: 224,
            width: 1.0,
            classes: 5,
        };
        let lines = table(&args).unwrap();
        for line in &lines {
            assert!(
                line.chars().count() <= COLUMNS,
                "{} columns: {line}",
                line.len()
            );
        }
        // SE-ResNeXt-50 at 1,000 classes is within 1 % of the paper's 27.6 M (the 5-class
        // count, 25.5 M, is not what the paper's figure is compared with).
        let row = lines
            .iter()
            .find(|l| l.starts_with("se-resnext50 "))
            .unwrap();
        let numbers: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(numbers[1], "25.52", "{row}");
        let full: f64 = numbers[4].parse().unwrap();
        assert!((full - 27.6).abs() / 27.6 < 0.01, "{row}");
    }

    #[test]
    fn a_long_citation_wraps_under_its_model_name() {
        let lines = wrap("  name ", "one two three four", 14);
        assert_eq!(lines, ["  name one two", "       three", "       four"]);
    }
}
