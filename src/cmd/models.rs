//! `album models`: the model registry, with parameter and MAC counts as configured.

use album_training::models::{ModelConfig, REGISTRY, trainable_params};
use burn::tensor::Device;

/// List the models `album train` can build: parameters and multiply–accumulates at the
/// given size, width and class count, beside the published full-size figures.
#[derive(Debug, clap::Args)]
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

pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    // Parameters are created lazily, so building even VGG16 here allocates nothing.
    let device = Device::flex();
    println!(
        "{:<15} {:>12} {:>10}   {:>14} {:>12}   paper",
        "model", "params", "GMACs", "published params", "GMACs@224"
    );
    println!(
        "{:<15} {:>12} {:>10}   (1,000 classes, width 1, 224 px)",
        "",
        format!("({} cls)", args.classes),
        format!("@{}px w{}", args.size, args.width)
    );
    for info in REGISTRY {
        let model = ModelConfig::new(info.name.to_owned())
            .with_num_classes(args.classes)
            .with_width(args.width)
            .init(&device)?;
        let params = trainable_params(&model);
        let gmacs = model.macs(args.size) as f64 / 1e9;
        let published = info
            .published_params
            .map_or("-".to_owned(), |p| format!("{:.1} M", p as f64 / 1e6));
        let published_macs = info
            .published_gmacs
            .map_or("-".to_owned(), |g| format!("{g:.2}"));
        println!(
            "{:<15} {:>10.2} M {:>10.3}   {:>16} {:>12}   {}",
            info.name,
            params as f64 / 1e6,
            gmacs,
            published,
            published_macs,
            info.paper
        );
    }
    Ok(())
}
