//! 2-D convolution on flex, forward and backward, as matrix products over chunks of the
//! batch (float32; other dtypes keep burn's kernels).
//!
//! The work is cut into units: one group `g` of the convolution over a chunk of images.
//! With `K = C/G · kh · kw` (one receptive field) and `M` the chunk's output pixels:
//!
//! ```text
//! col    [K × M]   the input's receptive fields (im2col; a 1×1 stride-1 conv copies)
//! y      [O/G × M] = W_g [O/G × K] · col
//! dW_g  += dY [O/G × M] · colᵀ          (one partial per unit, summed per group)
//! dcol   [K × M]   = W_gᵀ · dY, then scatter-added back onto dx (col2im)
//! ```
//!
//! At stride 1 with no more outputs than inputs per group, `dx` is instead the forward
//! of a transposed convolution of `dY` (see [`transposed_geometry`]).
//!
//! Why: burn's generic backward computes the weight gradient as a convolution whose
//! kernel is the output gradient, looping over the groups with a slice-assign each, and
//! the input gradient as a transposed convolution. Chunks are sized so that `col` stays
//! about 512 KB: a 56×56 map gets one image per unit, a 2×2 map the whole batch (one
//! image's 2×2 pixels would make products too thin to run fast). Units run in parallel
//! on rayon's pool with single-threaded products; when there are fewer units than
//! threads, each product uses every thread instead. Each unit writes only its own
//! images' slices of the group's channels, so no two threads share an output.

use gemm::Parallelism;
use rayon::prelude::*;

/// Shapes and options of one convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub batch: usize,
    pub in_channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Geometry {
    fn out_side(&self, axis: usize) -> usize {
        let input = [self.height, self.width][axis];
        let reach = self.dilation[axis] * (self.kernel[axis] - 1) + 1;
        (input + 2 * self.padding[axis]).saturating_sub(reach) / self.stride[axis] + 1
    }

    pub fn out_height(&self) -> usize {
        self.out_side(0)
    }

    pub fn out_width(&self) -> usize {
        self.out_side(1)
    }

    fn in_per_group(&self) -> usize {
        self.in_channels / self.groups
    }

    fn out_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    /// `K`: one receptive field.
    fn field(&self) -> usize {
        self.in_per_group() * self.kernel[0] * self.kernel[1]
    }

    fn out_plane(&self) -> usize {
        self.out_height() * self.out_width()
    }

    fn in_plane(&self) -> usize {
        self.height * self.width
    }

    /// Whether the receptive fields are the input itself (1×1, stride 1, no padding).
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

/// Floats of receptive fields (`K × M`) a unit aims at: about 512 KB, so its `col`
/// stays in the cache while its products read it.
const UNIT_FIELDS: usize = 128 * 1024;

/// One group of the convolution over the images `first..first + count`.
struct Unit<'a> {
    group: usize,
    first: usize,
    count: usize,
    /// Per image of the chunk, the group's channels of the output being written
    /// (`y` forward: `[O/G, Ho, Wo]`; `dx` backward: `[C/G, H, W]`).
    outputs: Vec<&'a mut [f32]>,
}

/// The units of `geo`, each handed its slices of `out` (`[N, G, per_group]`).
fn units<'a>(geo: &Geometry, out: &'a mut [f32], per_group: usize) -> Vec<Unit<'a>> {
    let per_image = geo.field() * geo.out_plane();
    let chunk = (UNIT_FIELDS / per_image.max(1)).clamp(1, geo.batch.max(1));
    let mut by_group: Vec<Vec<&'a mut [f32]>> = (0..geo.groups).map(|_| Vec::new()).collect();
    for image in out.chunks_mut((geo.groups * per_group).max(1)) {
        for (g, slice) in image.chunks_mut(per_group.max(1)).enumerate() {
            by_group[g].push(slice);
        }
    }
    let mut units = Vec::new();
    for (group, slices) in by_group.into_iter().enumerate() {
        let mut slices = slices.into_iter();
        let mut first = 0;
        while first < geo.batch {
            let count = chunk.min(geo.batch - first);
            let outputs = slices.by_ref().take(count).collect();
            units.push(Unit {
                group,
                first,
                count,
                outputs,
            });
            first += count;
        }
    }
    units
}

/// Runs `work` on every unit: in parallel with single-threaded products when the units
/// alone fill the threads, else one after the other with products on every thread.
fn for_each_unit<'a, T: Send>(
    units: Vec<Unit<'a>>,
    work: impl Fn(Unit<'a>, Parallelism) -> T + Sync + Send,
) -> Vec<T> {
    if units.len() >= 2 * rayon::current_num_threads() {
        units
            .into_par_iter()
            .map(|unit| work(unit, Parallelism::None))
            .collect()
    } else {
        units
            .into_iter()
            .map(|unit| work(unit, Parallelism::Rayon(0)))
            .collect()
    }
}

thread_local! {
    /// Each thread's working buffers (fields, packed gradients, products), kept between
    /// units and calls: fresh ones would be zeroed and page-faulted in on every call.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()])
    };
}

/// Runs `work` with three buffers of at least `sizes` floats, borrowed from this
/// thread's scratch (their contents are stale: every user overwrites what it reads).
/// The buffers are taken out while `work` runs, so a nested call simply allocates.
fn with_scratch<R>(
    sizes: [usize; 3],
    work: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R,
) -> R {
    let mut buffers = SCRATCH.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
    for (buffer, &size) in buffers.iter_mut().zip(&sizes) {
        if buffer.len() < size {
            buffer.resize(size, 0.0);
        }
    }
    let [a, b, c] = &mut buffers;
    let result = work(&mut a[..sizes[0]], &mut b[..sizes[1]], &mut c[..sizes[2]]);
    SCRATCH.with(|cell| *cell.borrow_mut() = buffers);
    result
}

/// `[K × M]` receptive fields of group `g` of `x` for images `first..first + count`.
fn im2col(x: &[f32], geo: &Geometry, g: usize, first: usize, count: usize, col: &mut [f32]) {
    let (cg, [kh, kw]) = (geo.in_per_group(), geo.kernel);
    let (oh, ow, plane) = (geo.out_height(), geo.out_width(), geo.out_plane());
    let m = count * plane;
    if geo.is_pointwise() {
        pack(x, geo.in_channels, cg, plane, g, first, count, col);
        return;
    }
    let same_size = geo.stride == [1, 1] && oh == geo.height && ow == geo.width;
    for ci in 0..cg {
        let channel = g * cg + ci;
        for ky in 0..kh {
            for kx in 0..kw {
                let row = &mut col[((ci * kh + ky) * kw + kx) * m..][..m];
                let (lo, hi) = valid_columns(kx, geo);
                for n in 0..count {
                    let input = &x[((first + n) * geo.in_channels + channel) * geo.in_plane()..]
                        [..geo.in_plane()];
                    let out = &mut row[n * plane..][..plane];
                    if same_size {
                        shifted_plane(input, [ky, kx], (lo, hi), geo, out);
                        continue;
                    }
                    for oy in 0..oh {
                        let dst = &mut out[oy * ow..][..ow];
                        let Some(iy) = tap(oy, ky, 0, geo, geo.height) else {
                            dst.fill(0.0);
                            continue;
                        };
                        let src = &input[iy * geo.width..][..geo.width];
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        if lo < hi {
                            let start = lo * geo.stride[1] + kx * geo.dilation[1] - geo.padding[1];
                            if geo.stride[1] == 1 {
                                // a plain copy, which the strided iterator is not compiled to
                                dst[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                            } else {
                                let taps = src[start..].iter().step_by(geo.stride[1]);
                                dst[lo..hi].iter_mut().zip(taps).for_each(|(d, &v)| *d = v);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One receptive-field row of a stride-1 convolution whose output is as large as its
/// input: the input plane shifted by the tap's offset, zero where the tap reads the
/// padding. Rows of the output and the input then line up, so it is one copy of the
/// whole plane followed by zeroing the few columns and rows that wrapped around,
/// instead of a copy per output row (the per-row copies of 56 floats cost more in
/// calls and bounds than in bytes).
fn shifted_plane(
    input: &[f32],
    [ky, kx]: [usize; 2],
    (lo, hi): (usize, usize),
    geo: &Geometry,
    out: &mut [f32],
) {
    let (height, width) = (geo.height as isize, geo.width as isize);
    let dy = (ky * geo.dilation[0]) as isize - geo.padding[0] as isize;
    let dx = (kx * geo.dilation[1]) as isize - geo.padding[1] as isize;
    // the output rows whose tap row lies inside the input
    let top = (-dy).clamp(0, height) as usize;
    let bottom = (height - dy).clamp(0, height) as usize;
    let width_u = geo.width;
    out[..top * width_u].fill(0.0);
    out[bottom.max(top) * width_u..].fill(0.0);
    if top >= bottom {
        return;
    }
    // out[i] = input[i + shift] over those rows, clipped to the input's bounds; the
    // clipped ends lie in columns the fix-up below zeroes anyway
    let shift = dy * width + dx;
    let plane = height * width;
    let start = ((top * width_u) as isize).max(-shift);
    let end = ((bottom * width_u) as isize).min(plane - shift);
    if start < end {
        let (s, e) = (start as usize, end as usize);
        let from = (start + shift) as usize;
        out[s..e].copy_from_slice(&input[from..from + (e - s)]);
    }
    for row in out[top * width_u..bottom * width_u].chunks_mut(width_u) {
        row[..lo].fill(0.0);
        row[hi..].fill(0.0);
    }
}

/// The output columns `lo..hi` whose kernel tap `kx` falls inside the input (the
/// others read the zero padding).
fn valid_columns(kx: usize, geo: &Geometry) -> (usize, usize) {
    let ow = geo.out_width();
    let (stride, reach) = (geo.stride[1], kx * geo.dilation[1]);
    // ox·stride + reach − padding ∈ [0, width)
    let lo = geo.padding[1]
        .saturating_sub(reach)
        .div_ceil(stride)
        .min(ow);
    let hi = (geo.width + geo.padding[1])
        .saturating_sub(reach)
        .div_ceil(stride)
        .min(ow);
    (lo, hi.max(lo))
}

/// The input row or column that output position `out` reads through kernel tap `k`
/// along `axis`, or `None` in the padding.
fn tap(out: usize, k: usize, axis: usize, geo: &Geometry, size: usize) -> Option<usize> {
    (out * geo.stride[axis] + k * geo.dilation[axis])
        .checked_sub(geo.padding[axis])
        .filter(|&i| i < size)
}

/// Group `g`'s channels of images `first..first + count` of an `[N, C, P]` tensor, as
/// `[C/G × count·P]`.
#[allow(clippy::too_many_arguments)]
fn pack(
    values: &[f32],
    channels: usize,
    per_group: usize,
    plane: usize,
    g: usize,
    first: usize,
    count: usize,
    out: &mut [f32],
) {
    for c in 0..per_group {
        let row = &mut out[c * count * plane..][..count * plane];
        for n in 0..count {
            let src = &values[((first + n) * channels + g * per_group + c) * plane..][..plane];
            row[n * plane..][..plane].copy_from_slice(src);
        }
    }
}

/// `dst[m × n] (+)= lhs[m × k] · rhs[k × n]`, all row-major, `lhs` or `rhs` optionally
/// read transposed (stored as `[k × m]`, `[n × k]`).
#[allow(clippy::too_many_arguments)]
fn matmul(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    lhs: &[f32],
    lhs_transposed: bool,
    rhs: &[f32],
    rhs_transposed: bool,
    parallelism: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst[..m * n].fill(0.0);
        return;
    }
    // (row stride, column stride) of each operand
    let (lhs_rs, lhs_cs) = if lhs_transposed {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (rhs_rs, rhs_cs) = if rhs_transposed {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n);
    // SAFETY: the assert above bounds every element the strides can reach: dst is
    // row-major m × n, lhs m × k (or its transpose), rhs k × n (or its transpose).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `y = conv(x, w) + b`, `[N, O, Ho, Wo]`.
pub(super) fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, geo: &Geometry) -> Vec<f32> {
    let (og, k, plane) = (geo.out_per_group(), geo.field(), geo.out_plane());
    let mut y = vec![0.0f32; geo.batch * geo.out_channels * plane];
    let units = units(geo, &mut y, og * plane);
    for_each_unit(units, |unit, parallelism| {
        let m = unit.count * plane;
        with_scratch([k * m, og * m, 0], |col, out, _| {
            im2col(x, geo, unit.group, unit.first, unit.count, col);
            let w = &weight[unit.group * og * k..][..og * k];
            matmul([og, m, k], out, w, false, col, false, parallelism);
            for (n, image) in unit.outputs.into_iter().enumerate() {
                for (o, dst) in image.chunks_mut(plane.max(1)).enumerate() {
                    dst.copy_from_slice(&out[o * m + n * plane..][..plane]);
                    if let Some(bias) = bias {
                        let b = bias[unit.group * og + o];
                        dst.iter_mut().for_each(|v| *v += b);
                    }
                }
            }
        })
    });
    y
}

/// Gradients of [`forward`] from the output gradient `dy` (`[N, O, Ho, Wo]`).
pub(super) struct Backward {
    pub input: Option<Vec<f32>>,
    pub weight: Option<Vec<f32>>,
    pub bias: Option<Vec<f32>>,
}

pub(super) fn backward(
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    geo: &Geometry,
    [want_input, want_weight, want_bias]: [bool; 3],
) -> Backward {
    let (og, cg, k, plane) = (
        geo.out_per_group(),
        geo.in_per_group(),
        geo.field(),
        geo.out_plane(),
    );
    // The input gradient comes either from a transposed convolution after the units, or
    // from the units themselves (W_gᵀ · dY, scattered).
    let transposed = want_input.then(|| transposed_geometry(geo)).flatten();
    let scatter_input = want_input && transposed.is_none();
    let mut dx = vec![0.0f32; if scatter_input { x.len() } else { 0 }];
    // With no input gradient to scatter, units get empty output slices.
    let per_group = if scatter_input {
        cg * geo.in_plane()
    } else {
        0
    };
    let units = if scatter_input {
        units(geo, &mut dx, per_group)
    } else {
        units(geo, &mut [], 0)
    };
    let partials: Vec<(usize, Vec<f32>)> = for_each_unit(units, |unit, parallelism| {
        let m = unit.count * plane;
        let fields = if scatter_input || want_weight {
            k * m
        } else {
            0
        };
        with_scratch([og * m, fields, 0], |dy_unit, buffer, _| {
            pack(
                dy,
                geo.out_channels,
                og,
                plane,
                unit.group,
                unit.first,
                unit.count,
                dy_unit,
            );
            let mut partial = Vec::new();
            if want_weight {
                im2col(x, geo, unit.group, unit.first, unit.count, buffer);
                partial = vec![0.0f32; og * k];
                // dW_g += dY · colᵀ
                matmul(
                    [og, k, m],
                    &mut partial,
                    dy_unit,
                    false,
                    buffer,
                    true,
                    parallelism,
                );
            }
            if scatter_input {
                // dcol = W_gᵀ · dY (into the same buffer: col is no longer needed)
                let w = &weight[unit.group * og * k..][..og * k];
                matmul([k, m, og], buffer, w, true, dy_unit, false, parallelism);
                for (n, image) in unit.outputs.into_iter().enumerate() {
                    col2im(buffer, m, n * plane, geo, image);
                }
            }
            (unit.group, partial)
        })
    });
    let grad_weight = want_weight.then(|| {
        let mut dw = vec![0.0f32; weight.len()];
        for (group, partial) in &partials {
            let dst = &mut dw[group * og * k..][..og * k];
            dst.iter_mut().zip(partial).for_each(|(d, p)| *d += p);
        }
        dw
    });
    let bias = want_bias.then(|| {
        (0..geo.out_channels)
            .into_par_iter()
            .map(|o| {
                (0..geo.batch)
                    .map(|n| {
                        dy[(n * geo.out_channels + o) * plane..][..plane]
                            .iter()
                            .map(|&v| f64::from(v))
                            .sum::<f64>()
                    })
                    .sum::<f64>() as f32
            })
            .collect()
    });
    let input = match transposed {
        Some(transposed) => Some(forward(
            dy,
            &flipped_transpose(weight, geo),
            None,
            &transposed,
        )),
        None => scatter_input.then_some(dx),
    };
    Backward {
        input,
        weight: grad_weight,
        bias,
    }
}

/// The convolution whose output is the input gradient of a stride-1 convolution with
/// fewer outputs than inputs per group, when there is one: `dx = conv(dy, W')` with
/// `W'` the kernel flipped and its in/out channels swapped ([`flipped_transpose`]) and
/// padding `d·(k − 1) − p`. Why: the scatter route multiplies `Wᵀ [K × O/G]` by `dY`,
/// an inner dimension of O/G (16 for DenseNet's growth convs), and writes then
/// scatter-adds a `[C/G·kh·kw × M]` buffer; this route's product has an inner dimension
/// of O/G·kh·kw and writes `dx` directly.
fn transposed_geometry(geo: &Geometry) -> Option<Geometry> {
    if geo.stride != [1, 1] || geo.is_pointwise() || geo.out_per_group() > geo.in_per_group() {
        return None;
    }
    let padding = [0, 1]
        .map(|axis| (geo.dilation[axis] * (geo.kernel[axis] - 1)).checked_sub(geo.padding[axis]));
    let [Some(pad_h), Some(pad_w)] = padding else {
        return None;
    };
    let transposed = Geometry {
        batch: geo.batch,
        in_channels: geo.out_channels,
        height: geo.out_height(),
        width: geo.out_width(),
        out_channels: geo.in_channels,
        kernel: geo.kernel,
        stride: [1, 1],
        padding: [pad_h, pad_w],
        dilation: geo.dilation,
        groups: geo.groups,
    };
    // the transposed convolution must land exactly on the input's size
    (transposed.out_height() == geo.height && transposed.out_width() == geo.width)
        .then_some(transposed)
}

/// `W'[g·C/G + c, o, ky, kx] = W[g·O/G + o, c, kh − 1 − ky, kw − 1 − kx]`.
fn flipped_transpose(weight: &[f32], geo: &Geometry) -> Vec<f32> {
    let (og, cg, [kh, kw]) = (geo.out_per_group(), geo.in_per_group(), geo.kernel);
    let taps = kh * kw;
    let mut flipped = vec![0.0f32; weight.len()];
    for g in 0..geo.groups {
        for o in 0..og {
            for c in 0..cg {
                let src = &weight[((g * og + o) * cg + c) * taps..][..taps];
                let dst = &mut flipped[((g * cg + c) * og + o) * taps..][..taps];
                dst.iter_mut()
                    .zip(src.iter().rev())
                    .for_each(|(d, &v)| *d = v);
            }
        }
    }
    flipped
}

/// Scatter-adds one image's field gradients (columns `offset..offset + Ho·Wo` of the
/// `[K × m]` `dcol`) onto that image's `[C/G, H, W]` slice of the group.
fn col2im(dcol: &[f32], m: usize, offset: usize, geo: &Geometry, image: &mut [f32]) {
    let (cg, [kh, kw]) = (geo.in_per_group(), geo.kernel);
    let (oh, ow, plane) = (geo.out_height(), geo.out_width(), geo.out_plane());
    for (ci, out) in image.chunks_mut(geo.in_plane().max(1)).enumerate().take(cg) {
        if geo.is_pointwise() {
            out.copy_from_slice(&dcol[ci * m + offset..][..plane]);
            continue;
        }
        for ky in 0..kh {
            for kx in 0..kw {
                let row = &dcol[((ci * kh + ky) * kw + kx) * m + offset..][..plane];
                let (lo, hi) = valid_columns(kx, geo);
                if lo >= hi {
                    continue;
                }
                let start = lo * geo.stride[1] + kx * geo.dilation[1] - geo.padding[1];
                for oy in 0..oh {
                    let Some(iy) = tap(oy, ky, 0, geo, geo.height) else {
                        continue;
                    };
                    let src = &row[oy * ow + lo..oy * ow + hi];
                    let dst = &mut out[iy * geo.width + start..];
                    if geo.stride[1] == 1 {
                        dst[..src.len()]
                            .iter_mut()
                            .zip(src)
                            .for_each(|(d, &v)| *d += v);
                    } else {
                        let taps = dst.iter_mut().step_by(geo.stride[1]);
                        taps.zip(src).for_each(|(d, &v)| *d += v);
                    }
                }
            }
        }
    }
}
