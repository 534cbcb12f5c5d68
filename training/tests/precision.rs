//! bf16 means the whole model in bf16: burn has no automatic mixed precision. This file
//! is its own test process because burn fixes a device's float type for the process once
//! the device is first used.

use album_training::config::Precision;
use album_training::models::{Model, ModelConfig};
use album_training::training::configured_device;
use burn::tensor::{DType, Device, Tensor};

#[test]
fn bf16_puts_weights_and_activations_in_bf16_and_cannot_be_changed_later() {
    let device = configured_device(Device::flex(), Precision::Bf16).unwrap();
    let model = ModelConfig::new("se-resnext50".into())
        .with_width(0.125)
        .init(&device.clone().autodiff())
        .unwrap();
    let Model::SeResNeXt(inner) = &model else {
        unreachable!("se-resnext50 builds an SE-ResNeXt")
    };
    assert_eq!(inner.stem.conv.weight.val().dtype(), DType::BF16);
    let images = Tensor::<4>::zeros([1, 3, 32, 32], &device.clone().autodiff());
    assert_eq!(model.forward(images).dtype(), DType::BF16);

    let err = configured_device(Device::flex(), Precision::F16)
        .unwrap_err()
        .to_string();
    assert!(err.contains("once per process"), "{err}");
    let err = configured_device(Device::flex(), Precision::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("BF16"), "{err}");

    // The bug: `album bench train` of two bf16 configs in one process refused the second
    // ("AlreadyInitialized"), though the device already ran in bf16.
    let again = configured_device(Device::flex(), Precision::Bf16).unwrap();
    assert_eq!(Tensor::<1>::zeros([1], &again).dtype(), DType::BF16);
}
