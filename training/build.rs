//! With the `tch` feature, compiles `csrc/aten_ops.cpp` (ATen's convolution and batch-norm
//! backward behind a C ABI) against the LibTorch that torch-sys links. torch-sys declares
//! `links = "tch"` and prints `cargo:libtorch_lib=<torch>/lib`, which cargo hands to this
//! script as `DEP_TCH_LIBTORCH_LIB`; the headers sit beside it in `<torch>/include`.

#[cfg(feature = "tch")]
use std::env;

fn main() {
    println!("cargo:rerun-if-changed=csrc/aten_ops.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    #[cfg(feature = "tch")]
    if env::var_os("CARGO_FEATURE_TCH").is_some() {
        compile_aten_ops();
    }
}

#[cfg(feature = "tch")]
fn compile_aten_ops() {
    let Some(lib) = env::var_os("DEP_TCH_LIBTORCH_LIB").map(std::path::PathBuf::from) else {
        panic!("torch-sys did not say where LibTorch is (DEP_TCH_LIBTORCH_LIB is unset)");
    };
    let Some(root) = lib.parent() else {
        panic!("LibTorch's library folder {} has no parent", lib.display());
    };
    // PyTorch's wheels since 2.7 are built with the C++11 ABI; LIBTORCH_CXX11_ABI=0 is
    // torch-sys's own switch for older ones.
    let abi = env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .std("c++17")
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .file("csrc/aten_ops.cpp")
        .compile("album_aten_ops");
}
