//! Just enough of the ONNX protobuf to read the detector's weights and graph.
//!
//! An ONNX file is one protobuf `ModelProto` (onnx/onnx.proto3). Protobuf's wire format is
//! small: every field is a key varint `(field_number << 3) | wire_type`, then a varint
//! (type 0), 8 little-endian bytes (type 1), a varint length and that many bytes (type 2:
//! strings, bytes, nested messages, packed repeated scalars) or 4 little-endian bytes
//! (type 5). Unknown fields are skipped by their wire type, so this reader only names the
//! fields it needs:
//!
//! | message | field | what |
//! |---|---|---|
//! | `ModelProto` | 7 | `graph` |
//! | `GraphProto` | 1, 5 | `node` (repeated), `initializer` (repeated `TensorProto`) |
//! | `NodeProto` | 1, 2, 3, 4, 5 | `input`, `output`, `name`, `op_type`, `attribute` |
//! | `AttributeProto` | 1, 2, 3, 4, 7, 8 | `name`, `f`, `i`, `s`, `floats`, `ints` |
//! | `TensorProto` | 1, 2, 4, 8, 9, 14 | `dims`, `data_type`, `float_data`, `name`, `raw_data`, `data_location` |
//!
//! Only FLOAT (data type 1) tensors get their values decoded, from `raw_data`
//! (little-endian f32) or `float_data`; other tensors keep their name, type and dims.
//! Every read is bounds-checked: truncated or garbage bytes give an error, never a panic
//! (a corrupt file is normally refused earlier by the SHA-256 in [`crate::weights`]).

use std::path::Path;

use crate::error::{Error, Result};

/// ONNX `TensorProto.DataType.FLOAT`.
pub const DATA_TYPE_FLOAT: i32 = 1;

/// The parts of an ONNX graph this crate uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    /// Nodes in file order (ONNX requires topological order).
    pub nodes: Vec<Node>,
    /// The graph's stored tensors (weights).
    pub initializers: Vec<Initializer>,
}

/// One stored tensor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Initializer {
    pub name: String,
    pub dims: Vec<usize>,
    /// `TensorProto.DataType`; 1 = FLOAT.
    pub data_type: i32,
    /// The values, row-major, for FLOAT tensors; empty for any other type.
    pub floats: Vec<f32>,
}

/// One operator.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub name: String,
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: Vec<Attribute>,
}

/// A named attribute of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub value: AttributeValue,
}

/// The attribute kinds this reader keeps; tensors and graphs are dropped as `Other`.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    Float(f32),
    Int(i64),
    Bytes(Vec<u8>),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Other,
}

impl Graph {
    /// The initializer called `name`.
    pub fn initializer(&self, name: &str) -> Option<&Initializer> {
        self.initializers.iter().find(|init| init.name == name)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// The nodes that read the value `value`.
    pub fn consumers<'a>(&'a self, value: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes
            .iter()
            .filter(move |node| node.inputs.iter().any(|input| input == value))
    }

    /// Follows `Identity` nodes back to the initializer a value comes from: the PyTorch
    /// export aliases weights it uses twice through `Identity`.
    pub fn resolve_initializer(&self, value: &str) -> Option<&Initializer> {
        let mut name = value;
        // A well-formed graph is acyclic; the bound keeps a malformed one from looping.
        for _ in 0..=self.nodes.len() {
            if let Some(init) = self.initializer(name) {
                return Some(init);
            }
            let alias = self.nodes.iter().find(|node| {
                node.op_type == "Identity" && node.outputs.iter().any(|output| output == name)
            })?;
            name = alias.inputs.first()?;
        }
        None
    }
}

impl Node {
    /// The attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&AttributeValue> {
        self.attributes
            .iter()
            .find(|attr| attr.name == name)
            .map(|attr| &attr.value)
    }

    /// An `ints` attribute.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.attribute(name)? {
            AttributeValue::Ints(values) => Some(values),
            _ => None,
        }
    }

    /// An `int` attribute.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.attribute(name)? {
            AttributeValue::Int(value) => Some(*value),
            _ => None,
        }
    }

    /// A `float` attribute.
    pub fn float(&self, name: &str) -> Option<f32> {
        match self.attribute(name)? {
            AttributeValue::Float(value) => Some(*value),
            _ => None,
        }
    }
}

/// Parses an ONNX `ModelProto` and returns its graph; `path` only names the file in errors.
pub fn parse_model(path: &Path, bytes: &[u8]) -> Result<Graph> {
    parse_model_proto(bytes).map_err(|reason| Error::model_format(path, "ONNX", reason))
}

/// Reasons are plain strings here; [`parse_model`] attaches the path.
type Parsed<T> = std::result::Result<T, String>;

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// A cursor over one protobuf message's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A field's payload, read according to its wire type.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Fixed32(u32),
    Bytes(&'a [u8]),
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn varint(&mut self) -> Parsed<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| format!("truncated varint at byte {}", self.pos))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn take(&mut self, len: usize) -> Parsed<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "field of {len} bytes at byte {} runs past the end ({} bytes)",
                    self.pos,
                    self.bytes.len()
                )
            })?;
        let slice = self.bytes.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(slice)
    }

    /// The next field's number and payload, or `None` at the end of the message.
    fn field(&mut self) -> Parsed<Option<(u64, Value<'a>)>> {
        if self.at_end() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        let value = match (key & 7) as u8 {
            WIRE_VARINT => Value::Varint(self.varint()?),
            WIRE_FIXED64 => {
                self.take(8)?;
                Value::Fixed64
            }
            WIRE_LEN => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| "length does not fit in memory".to_string())?;
                Value::Bytes(self.take(len)?)
            }
            WIRE_FIXED32 => Value::Fixed32(le_u32(self.take(4)?)?),
            other => {
                return Err(format!(
                    "unsupported wire type {other} (field {number}) at byte {}",
                    self.pos
                ));
            }
        };
        if number == 0 {
            return Err("field number 0".to_string());
        }
        Ok(Some((number, value)))
    }
}

fn le_u32(bytes: &[u8]) -> Parsed<u32> {
    let array: [u8; 4] = bytes
        .try_into()
        .map_err(|_| format!("expected 4 bytes, got {}", bytes.len()))?;
    Ok(u32::from_le_bytes(array))
}

fn string(value: Value<'_>, what: &str) -> Parsed<String> {
    match value {
        Value::Bytes(bytes) => std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| format!("{what} is not UTF-8")),
        _ => Err(format!("{what} has the wrong wire type")),
    }
}

fn payload<'a>(value: Value<'a>, what: &str) -> Parsed<&'a [u8]> {
    match value {
        Value::Bytes(bytes) => Ok(bytes),
        _ => Err(format!("{what} has the wrong wire type")),
    }
}

fn varint(value: Value<'_>, what: &str) -> Parsed<u64> {
    match value {
        Value::Varint(v) => Ok(v),
        _ => Err(format!("{what} has the wrong wire type")),
    }
}

/// A repeated int64 field, packed (one length-delimited run) or not (one varint).
fn push_int64s(value: Value<'_>, out: &mut Vec<i64>, what: &str) -> Parsed<()> {
    match value {
        // protobuf int64 is the varint's two's-complement bits
        Value::Varint(v) => out.push(v as i64),
        Value::Bytes(packed) => {
            let mut reader = Reader::new(packed);
            while !reader.at_end() {
                out.push(reader.varint()? as i64);
            }
        }
        _ => return Err(format!("{what} has the wrong wire type")),
    }
    Ok(())
}

/// A repeated float field, packed (4 bytes each) or not (one fixed32).
fn push_floats(value: Value<'_>, out: &mut Vec<f32>, what: &str) -> Parsed<()> {
    match value {
        Value::Fixed32(bits) => out.push(f32::from_bits(bits)),
        Value::Bytes(packed) => decode_f32_le(packed, out, what)?,
        _ => return Err(format!("{what} has the wrong wire type")),
    }
    Ok(())
}

fn decode_f32_le(bytes: &[u8], out: &mut Vec<f32>, what: &str) -> Parsed<()> {
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "{what}: {} bytes is not a whole number of f32",
            bytes.len()
        ));
    }
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
    Ok(())
}

fn parse_model_proto(bytes: &[u8]) -> Parsed<Graph> {
    let mut reader = Reader::new(bytes);
    let mut graph = None;
    while let Some((number, value)) = reader.field()? {
        if number == 7 {
            graph = Some(parse_graph(payload(value, "ModelProto.graph")?)?);
        }
    }
    graph.ok_or_else(|| "no graph in the model".to_string())
}

fn parse_graph(bytes: &[u8]) -> Parsed<Graph> {
    let mut reader = Reader::new(bytes);
    let mut graph = Graph::default();
    while let Some((number, value)) = reader.field()? {
        match number {
            1 => {
                let index = graph.nodes.len();
                let node = parse_node(payload(value, "GraphProto.node")?)
                    .map_err(|reason| format!("node {index}: {reason}"))?;
                graph.nodes.push(node);
            }
            5 => {
                let index = graph.initializers.len();
                let init = parse_tensor(payload(value, "GraphProto.initializer")?)
                    .map_err(|reason| format!("initializer {index}: {reason}"))?;
                graph.initializers.push(init);
            }
            _ => {}
        }
    }
    Ok(graph)
}

fn parse_node(bytes: &[u8]) -> Parsed<Node> {
    let mut reader = Reader::new(bytes);
    let mut node = Node::default();
    while let Some((number, value)) = reader.field()? {
        match number {
            1 => node.inputs.push(string(value, "NodeProto.input")?),
            2 => node.outputs.push(string(value, "NodeProto.output")?),
            3 => node.name = string(value, "NodeProto.name")?,
            4 => node.op_type = string(value, "NodeProto.op_type")?,
            5 => node
                .attributes
                .push(parse_attribute(payload(value, "NodeProto.attribute")?)?),
            _ => {}
        }
    }
    Ok(node)
}

fn parse_attribute(bytes: &[u8]) -> Parsed<Attribute> {
    let mut reader = Reader::new(bytes);
    let mut name = String::new();
    let mut single = None;
    let mut floats = Vec::new();
    let mut ints = Vec::new();
    let mut kind = 0u64;
    while let Some((number, value)) = reader.field()? {
        match number {
            1 => name = string(value, "AttributeProto.name")?,
            2 => match value {
                Value::Fixed32(bits) => single = Some(AttributeValue::Float(f32::from_bits(bits))),
                _ => return Err("AttributeProto.f has the wrong wire type".to_string()),
            },
            3 => {
                let v = varint(value, "AttributeProto.i")?;
                single = Some(AttributeValue::Int(v as i64));
            }
            4 => {
                let s = payload(value, "AttributeProto.s")?;
                single = Some(AttributeValue::Bytes(s.to_vec()));
            }
            7 => push_floats(value, &mut floats, "AttributeProto.floats")?,
            8 => push_int64s(value, &mut ints, "AttributeProto.ints")?,
            20 => kind = varint(value, "AttributeProto.type")?,
            _ => {}
        }
    }
    // AttributeProto.type: 1 FLOAT, 2 INT, 3 STRING, 6 FLOATS, 7 INTS (0 in very old files)
    let value = match kind {
        6 => AttributeValue::Floats(floats),
        7 => AttributeValue::Ints(ints),
        _ if !ints.is_empty() => AttributeValue::Ints(ints),
        _ if !floats.is_empty() => AttributeValue::Floats(floats),
        _ => single.unwrap_or(AttributeValue::Other),
    };
    Ok(Attribute { name, value })
}

fn parse_tensor(bytes: &[u8]) -> Parsed<Initializer> {
    let mut reader = Reader::new(bytes);
    let mut init = Initializer::default();
    let mut raw: Option<&[u8]> = None;
    let mut dims = Vec::new();
    let mut external = false;
    while let Some((number, value)) = reader.field()? {
        match number {
            1 => push_int64s(value, &mut dims, "TensorProto.dims")?,
            2 => {
                let v = varint(value, "TensorProto.data_type")?;
                init.data_type = i32::try_from(v).map_err(|_| format!("data type {v}"))?;
            }
            4 => push_floats(value, &mut init.floats, "TensorProto.float_data")?,
            8 => init.name = string(value, "TensorProto.name")?,
            9 => raw = Some(payload(value, "TensorProto.raw_data")?),
            14 => external = varint(value, "TensorProto.data_location")? == 1,
            _ => {}
        }
    }
    init.dims = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("{}: negative dim {d}", init.name)))
        .collect::<Parsed<_>>()?;
    if init.data_type != DATA_TYPE_FLOAT {
        init.floats.clear();
        return Ok(init);
    }
    if external {
        return Err(format!("{}: external data is not supported", init.name));
    }
    if let Some(raw) = raw {
        init.floats.clear();
        decode_f32_le(raw, &mut init.floats, &init.name)?;
    }
    check_count(&init)?;
    Ok(init)
}

fn check_count(init: &Initializer) -> Parsed<()> {
    let expected = init
        .dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("{}: dims {:?} overflow", init.name, init.dims))?;
    if init.floats.len() != expected {
        return Err(format!(
            "{}: dims {:?} need {expected} floats, found {}",
            init.name,
            init.dims,
            init.floats.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A tiny protobuf writer, only for building test inputs.
    fn key(number: u64, wire: u8, out: &mut Vec<u8>) {
        put_varint((number << 3) | u64::from(wire), out);
    }

    fn put_varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn len_field(number: u64, payload: &[u8], out: &mut Vec<u8>) {
        key(number, WIRE_LEN, out);
        put_varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn varint_field(number: u64, v: u64, out: &mut Vec<u8>) {
        key(number, WIRE_VARINT, out);
        put_varint(v, out);
    }

    fn tiny_model() -> Vec<u8> {
        // initializer "w": dims [2, 1], FLOAT, raw_data [1.5, -2.0]
        let mut tensor = Vec::new();
        varint_field(1, 2, &mut tensor);
        varint_field(1, 1, &mut tensor);
        varint_field(2, 1, &mut tensor);
        len_field(8, b"w", &mut tensor);
        let raw: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        len_field(9, &raw, &mut tensor);

        // attribute "strides": ints [2, 2] packed, type INTS
        let mut attr = Vec::new();
        len_field(1, b"strides", &mut attr);
        len_field(8, &[2, 2], &mut attr);
        varint_field(20, 7, &mut attr);
        // attribute "alpha": float 0.1
        let mut alpha = Vec::new();
        len_field(1, b"alpha", &mut alpha);
        key(2, WIRE_FIXED32, &mut alpha);
        alpha.extend_from_slice(&0.1f32.to_le_bytes());
        varint_field(20, 1, &mut alpha);

        let mut node = Vec::new();
        len_field(1, b"x", &mut node);
        len_field(1, b"w", &mut node);
        len_field(2, b"y", &mut node);
        len_field(3, b"/conv/Conv", &mut node);
        len_field(4, b"Conv", &mut node);
        len_field(5, &attr, &mut node);
        len_field(5, &alpha, &mut node);

        let mut graph = Vec::new();
        len_field(1, &node, &mut graph);
        len_field(2, b"g", &mut graph);
        len_field(5, &tensor, &mut graph);

        let mut model = Vec::new();
        varint_field(1, 6, &mut model); // ir_version
        key(5, WIRE_FIXED64, &mut model); // an unknown fixed64 field, skipped
        model.extend_from_slice(&[0; 8]);
        len_field(7, &graph, &mut model);
        model
    }

    #[test]
    fn parses_a_hand_built_model() {
        let graph = parse_model(Path::new("t.onnx"), &tiny_model()).unwrap();
        assert_eq!(graph.initializers.len(), 1);
        let w = graph.initializer("w").unwrap();
        assert_eq!(w.dims, vec![2, 1]);
        assert_eq!(w.floats, vec![1.5, -2.0]);
        let node = graph.node("/conv/Conv").unwrap();
        assert_eq!(node.op_type, "Conv");
        assert_eq!(node.inputs, vec!["x", "w"]);
        assert_eq!(node.outputs, vec!["y"]);
        assert_eq!(node.ints("strides"), Some(&[2i64, 2][..]));
        assert_eq!(node.float("alpha"), Some(0.1));
        assert_eq!(graph.consumers("x").count(), 1);
        assert!(graph.resolve_initializer("w").is_some());
        assert!(graph.resolve_initializer("x").is_none());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let model = tiny_model();
        for len in 0..model.len() {
            // Some prefixes end exactly between fields and still parse (e.g. before the
            // graph: then "no graph"); none may panic, and none may claim the full graph.
            match parse_model(Path::new("t.onnx"), &model[..len]) {
                Err(error) => {
                    let text = error.to_string();
                    assert!(matches!(error, Error::ModelFormat { .. }), "{text}");
                    assert!(text.contains("t.onnx"), "{text}");
                }
                Ok(graph) => panic!("prefix of {len} bytes parsed: {graph:?}"),
            }
        }
    }

    #[test]
    fn garbage_bytes_are_errors() {
        let cases: [&[u8]; 5] = [
            &[0xff; 16],                           // a varint that never ends
            &[0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f], // graph field claiming 4 GB
            &[0x3b, 0x00],                         // wire type 3 (groups) is not supported
            b"not an onnx file at all",
            &[],
        ];
        for bytes in cases {
            assert!(
                parse_model(Path::new("g.onnx"), bytes).is_err(),
                "{bytes:?}"
            );
        }
        // Deterministic pseudo-random garbage: must return, whatever it returns.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            let _ = parse_model(Path::new("g.onnx"), &bytes);
        }
    }

    #[test]
    fn a_float_count_that_does_not_match_the_dims_is_an_error() {
        let mut tensor = Vec::new();
        varint_field(1, 3, &mut tensor);
        varint_field(2, 1, &mut tensor);
        len_field(8, b"w", &mut tensor);
        len_field(9, &1.0f32.to_le_bytes(), &mut tensor);
        let mut graph = Vec::new();
        len_field(5, &tensor, &mut graph);
        let mut model = Vec::new();
        len_field(7, &graph, &mut model);
        let text = parse_model(Path::new("m.onnx"), &model)
            .unwrap_err()
            .to_string();
        assert!(text.contains("need 3 floats, found 1"), "{text}");
    }

    #[test]
    fn identity_chains_resolve_to_their_initializer() {
        let graph = Graph {
            nodes: vec![Node {
                name: "Identity_1".into(),
                op_type: "Identity".into(),
                inputs: vec!["w".into()],
                outputs: vec!["alias".into()],
                attributes: vec![],
            }],
            initializers: vec![Initializer {
                name: "w".into(),
                dims: vec![1],
                data_type: DATA_TYPE_FLOAT,
                floats: vec![3.0],
            }],
        };
        assert_eq!(
            graph.resolve_initializer("alias").unwrap().floats,
            vec![3.0]
        );
    }
}
