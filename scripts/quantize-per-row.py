"""int8 graph of a float BERT-style ONNX encoder that batches: no activation scale depends on the batch.

onnxruntime.quantization.quantize_dynamic writes DynamicQuantizeLinear, which takes ONE scale over the
whole activation tensor: in a padded batch a text's vector then depends on the other texts (and on the
padding). In the graph this script makes, every activation scale is either a constant or taken over one
token row, so a text gives the same numbers whatever it is batched with, and the graph still runs
batches (the engine checks this when it loads a quantised graph). In order:

1. Q, K and V of each layer become one MatMul (weights side by side, then Split): one quantised
   product per layer instead of three (same numbers; fewer kernel calls).
2. Outlier smoothing (SmoothQuant, Xiao et al. 2023) of the activations that come out of a LayerNorm
   (the inputs of Q/K/V and of the feed-forward's first MatMul). A few channels of a BERT LayerNorm
   output are far larger than the rest, and one int8 scale then leaves the other channels few levels.
   With s_k = max|x_k|^alpha / max|W_k|^(1 - alpha) (x_k: channel k over the calibration tokens, W_k:
   row k of the weights that read it), the graph computes (x / s) . (diag(s) W): the same product, with
   the outliers moved into the weights, which are quantised per output column. s is rounded to a power
   of two, so dividing by it is exact and small float differences between machines in the calibration
   run do not change a byte of the output. The division is one Mul per smoothed activation. The
   calibration set is token ids of chunks of library sources and release notes that npm packages ship
   (scripts/quantize-calibration.json), none of them from the search benchmark's code bases.
3. quantize_dynamic: MatMul weights int8, one scale per output column.
4. Static scales (static_scales) for the smoothed LayerNorm outputs and the attention context (the
   attention output projection's input): a constant scale from the calibration range. No max/min per
   call, and ONNX Runtime fuses the bias Add into the quantised MatMul.
5. One scale per token row (per_row) for the rest: the feed-forward output projection's input (the
   GELU output), whose range moves too much from text to text for a constant scale.
6. The word-embedding table int8 with one scale per vocabulary row (quantize_dynamic leaves it fp32
   here; one scale for the whole table, as its Gather quantisation does, costs the embedding layer
   0.6 % in cosine). Position and token-type tables stay fp32 (small).

Per-row quantisation of an activation x of shape [..., K] read by MatMulInteger with weights W_q:

    s   = max(max(x), -min(x), 1e-12) / 127            over the last axis, shape [..., 1]
    x_q = QuantizeLinear(x viewed as [rows, K], s, 128, axis=0)   (com.microsoft: per-axis at any opset)
    y   = MatMulIntegerToFloat(x_q, W_q, one, W_scale, 128, W_zp) * s  (+ bias, as before)

ONNX Runtime fuses MatMulInteger -> Cast -> Mul(Mul(a, b)) into MatMulIntegerToFloat, which takes a
scalar activation scale: so the row scale stays out of that product (a dynamic scalar 1.0 stands in for
it, computed from the input so that constant folding keeps the product a Mul and the fusion fires), and
each output row is multiplied by its scale after it. With the row scale inside the product the fused
graph gives wrong numbers.

The output is the same byte for byte on every run with the same inputs and versions (checked: sha256 of
two runs). The versions, alpha and the calibration file's sha256 are written into the model's metadata.
The name is older than steps 4 and 5 (it made a graph with per-row scales everywhere).

Usage (Python with numpy, onnx and onnxruntime; the versions used last are in
models/all-MiniLM-L6-v2/README.md):
    python scripts/quantize-per-row.py models/all-MiniLM-L6-v2/onnx/model.onnx out.onnx \
        [--calibration scripts/quantize-calibration.json] [--alpha 0.7]
"""
import argparse
import hashlib
import json
import os

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic


def pack_qkv(model: onnx.ModelProto) -> int:
    """Q, K, V projections of a layer (three MatMul + bias Add reading one tensor) -> one MatMul, one Add, Split."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes = list(g.node)
    readers = {}
    for n in nodes:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    packed = 0
    for x in list(readers):
        mms = [n for n in readers[x] if n.op_type == 'MatMul' and n.input[0] == x and n.input[1] in inits
               and '/attention/self/' in n.name]
        if len(mms) != 3:
            continue
        mms.sort(key=lambda n: ['query', 'key', 'value'].index(n.name.split('/')[-2]))
        adds = []
        for n in mms:
            use = readers.get(n.output[0], [])
            if len(use) != 1 or use[0].op_type != 'Add' or not any(i in inits for i in use[0].input):
                raise SystemExit(f'{n.name}: expected one bias Add after it')
            adds.append(use[0])
        w = [numpy_helper.to_array(inits[n.input[1]]) for n in mms]
        bias_names = [[i for i in a.input if i in inits][0] for a in adds]
        b = [numpy_helper.to_array(inits[name]) for name in bias_names]
        if len({a.shape for a in w}) != 1 or w[0].shape[1] != b[0].shape[0]:
            raise SystemExit(f'{x}: Q/K/V shapes differ')
        p = mms[0].name.rsplit('/', 2)[0] + '/qkv'
        g.initializer.extend([numpy_helper.from_array(np.concatenate(w, 1), f'{p}.weight'),
                              numpy_helper.from_array(np.concatenate(b), f'{p}.bias')])
        width = w[0].shape[1]
        new = [helper.make_node('MatMul', [x, f'{p}.weight'], [f'{p}/MatMul_output_0'], name=f'{p}/MatMul'),
               helper.make_node('Add', [f'{p}.bias', f'{p}/MatMul_output_0'], [f'{p}/Add_output_0'], name=f'{p}/Add'),
               helper.make_node('Split', [f'{p}/Add_output_0'], [a.output[0] for a in adds], name=f'{p}/Split',
                                axis=-1, split=[width] * 3)]
        at = nodes.index(mms[0])
        for n in mms + adds:
            nodes.remove(n)
        nodes[at:at] = new
        for name in [n.input[1] for n in mms] + bias_names:
            g.initializer.remove(inits.pop(name))
        packed += 1
    del g.node[:]
    g.node.extend(nodes)
    return packed


def weight_matmul_inputs(model: onnx.ModelProto) -> dict:
    """Activations read by weight MatMuls -> (kind, those MatMuls); kind 'norm' for a LayerNorm's output,
    'context' for the attention heads joined back (the attention output projection's input), 'other'."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    out = {}
    for n in g.node:
        if n.op_type != 'MatMul' or n.input[1] not in inits:
            continue
        p = producer.get(n.input[0])
        kind = ('norm' if p is not None and '/LayerNorm/' in p.name
                else 'context' if '/attention/output/dense/' in n.name else 'other')
        out.setdefault(n.input[0], (kind, []))[1].append(n)
    return out


def calibrate(model: onnx.ModelProto, names: list, ids: list) -> dict:
    """max |x| per channel (last axis) of each tensor over the calibration texts, each text run alone."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for x in names:
        probe.graph.output.append(onnx.ValueInfoProto(name=x))
    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = onnxruntime.InferenceSession(probe.SerializeToString(), so, providers=['CPUExecutionProvider'])
    feeds = {i.name for i in sess.get_inputs()}
    act = {x: np.zeros(0) for x in names}
    for row in ids:  # one text per run: no padding in the statistics
        a = np.array([row], dtype=np.int64)
        feed = {'input_ids': a, 'attention_mask': np.ones_like(a)}
        if 'token_type_ids' in feeds:
            feed['token_type_ids'] = np.zeros_like(a)
        for x, v in zip(names, sess.run(names, feed)):
            m = np.abs(v.reshape(-1, v.shape[-1])).max(0).astype(np.float64)
            act[x] = m if not act[x].size else np.maximum(act[x], m)
    return act


def smooth(model: onnx.ModelProto, ids: list, alpha: float) -> dict:
    """Smooths the LayerNorm outputs (see the top); returns the calibrated range, max |x|, of every
    activation that gets a static scale (the smoothed LayerNorm outputs and the attention context),
    keyed by the tensor the quantiser will read."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    groups = weight_matmul_inputs(model)
    static = [x for x, (kind, _) in groups.items() if kind in ('norm', 'context')]
    act = calibrate(model, static, ids)
    ranges = {}
    muls = {}
    for x in static:
        kind, readers = groups[x]
        if kind == 'context':
            ranges[x] = float(act[x].max())
            continue
        w = [numpy_helper.to_array(inits[r.input[1]]) for r in readers]
        wmax = np.max([np.abs(a).max(1) for a in w], axis=0).astype(np.float64)
        s = np.power(np.maximum(act[x], 1e-5), alpha) / np.power(np.maximum(wmax, 1e-5), 1 - alpha)
        s = np.exp2(np.round(np.log2(s))).astype(np.float32)
        for r, a in zip(readers, w):
            inits[r.input[1]].CopyFrom(numpy_helper.from_array((a * s[:, None]).astype(np.float32), r.input[1]))
        inv = f'{x}/smooth_inverse'
        g.initializer.append(numpy_helper.from_array((1 / s).astype(np.float32), inv))
        y = f'{x}/smoothed'
        muls[x] = helper.make_node('Mul', [x, inv], [y], name=f'{x}/Smooth')
        for r in readers:
            r.input[0] = y
        ranges[y] = float((act[x] / s).max())  # exact: s is a power of two
    nodes = []
    for n in g.node:  # each Mul right after the node that writes its input
        nodes.append(n)
        nodes += [muls[o] for o in n.output if o in muls]
    del g.node[:]
    g.node.extend(nodes)
    return ranges


def static_scales(model: onnx.ModelProto, ranges: dict) -> int:
    """The DynamicQuantizeLinear of each activation in `ranges` becomes QuantizeLinear with a constant
    scale: max |x| over the calibration set, rounded up to a step of 2^(1/16) (so float noise in the
    calibration run does not change a byte), over 127, zero point 128. Values past it saturate. The scale
    output feeds the weight-scale product as a Mul of a dynamic 1.0 (see per_row: a constant there would
    be folded and ONNX Runtime would not fuse MatMulIntegerToFloat, and with it the bias Add)."""
    g = model.graph
    nodes, count = [], 0  # pr_one and pr_zero_point are made by per_row, which runs next
    for n in g.node:
        if n.op_type != 'DynamicQuantizeLinear' or n.input[0] not in ranges:
            nodes.append(n)
            continue
        x = n.input[0]
        y, s, zp = n.output
        top = np.exp2(np.ceil(16 * np.log2(max(ranges[x], 1e-12))) / 16)
        c = f'{x}/static_scale'
        g.initializer.append(numpy_helper.from_array(np.array(top / 127, dtype=np.float32), c))
        nodes += [helper.make_node('Mul', ['pr_one', c], [s], name=f'{x}/StaticScale'),
                  helper.make_node('QuantizeLinear', [x, s, 'pr_zero_point'], [y], name=f'{x}/Quantize'),
                  helper.make_node('Identity', ['pr_zero_point'], [zp], name=f'{x}/ZeroPoint')]
        count += 1
    if count != len(ranges):
        raise SystemExit(f'{len(ranges)} activations calibrated for a static scale, {count} quantised')
    del g.node[:]
    g.node.extend(nodes)
    return count


def per_row(model: onnx.ModelProto) -> int:
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    if 'input_ids' not in {i.name for i in g.input}:
        raise SystemExit('the graph has no input_ids input')
    consts = {
        'pr_zero_point': np.array(128, dtype=np.uint8),
        'pr_levels': np.array(127, dtype=np.float32),
        'pr_tiny': np.array(1e-12, dtype=np.float32),
        'pr_flat': np.array([-1], dtype=np.int64),
        'pr_zero_i64': np.array(0, dtype=np.int64),
    }
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    # A scalar 1.0 that is not a constant: Cast(Size(input_ids) > 0).
    nodes = [
        helper.make_node('Size', ['input_ids'], ['pr_size'], name='per_row/Size'),
        helper.make_node('Greater', ['pr_size', 'pr_zero_i64'], ['pr_nonempty'], name='per_row/NonEmpty'),
        helper.make_node('Cast', ['pr_nonempty'], ['pr_one'], name='per_row/One', to=TensorProto.FLOAT),
    ]
    row_scales = set()
    for n in g.node:
        if n.op_type != 'DynamicQuantizeLinear':
            nodes.append(n)
            continue
        x = n.input[0]
        y, s, zp = n.output
        readers = consumers.get(y, [])
        if not readers or any(r.op_type != 'MatMulInteger' for r in readers):
            raise SystemExit(f'{n.name}: its output is read by {[r.op_type for r in readers]}, not only MatMulInteger')
        k = inits[readers[0].input[1]].dims[0]
        shape = f'pr_rows_by_{k}'
        if shape not in inits:
            inits[shape] = numpy_helper.from_array(np.array([-1, k], dtype=np.int64), shape)
            g.initializer.append(inits[shape])
        p = f'{n.name or x}/per_row'
        row_scales.add(s)
        nodes += [
            helper.make_node('ReduceMax', [x], [f'{p}/max'], name=f'{p}/ReduceMax', axes=[-1], keepdims=1),
            helper.make_node('ReduceMin', [x], [f'{p}/min'], name=f'{p}/ReduceMin', axes=[-1], keepdims=1),
            helper.make_node('Neg', [f'{p}/min'], [f'{p}/negmin'], name=f'{p}/Neg'),
            helper.make_node('Max', [f'{p}/max', f'{p}/negmin', 'pr_tiny'], [f'{p}/absmax'], name=f'{p}/Max'),
            helper.make_node('Div', [f'{p}/absmax', 'pr_levels'], [s], name=f'{p}/Scale'),
            helper.make_node('Reshape', [s, 'pr_flat'], [f'{p}/scale_rows'], name=f'{p}/ScaleRows'),
            helper.make_node('Shape', [f'{p}/scale_rows'], [f'{p}/rows'], name=f'{p}/Rows'),
            helper.make_node('Expand', ['pr_zero_point', f'{p}/rows'], [f'{p}/zero_point_rows'], name=f'{p}/ZeroPointRows'),
            helper.make_node('Reshape', [x, shape], [f'{p}/x_rows'], name=f'{p}/XRows'),
            helper.make_node('QuantizeLinear', [f'{p}/x_rows', f'{p}/scale_rows', f'{p}/zero_point_rows'], [f'{p}/q_rows'],
                             name=f'{p}/Quantize', domain='com.microsoft', axis=0),
            helper.make_node('Shape', [x], [f'{p}/x_shape'], name=f'{p}/XShape'),
            helper.make_node('Reshape', [f'{p}/q_rows', f'{p}/x_shape'], [y], name=f'{p}/Back'),
            helper.make_node('Identity', ['pr_zero_point'], [zp], name=f'{p}/ZeroPoint'),
        ]
    consumers = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    after = {}
    for s in row_scales:
        for mul in consumers.get(s, []):
            if mul.op_type != 'Mul':
                continue
            w_scale = [i for i in mul.input if i != s][0]
            del mul.input[:]
            mul.input.extend(['pr_one', w_scale])
            for use in consumers.get(mul.output[0], []):
                if use.op_type != 'Mul':
                    raise SystemExit(f'{use.name}: {use.op_type} reads a scale product')
                out = use.output[0]
                use.output[0] = f'{out}_before_row_scale'
                after[id(use)] = helper.make_node('Mul', [use.output[0], s], [out], name=f'{use.name}/RowScale')
    del g.node[:]
    for n in nodes:
        g.node.append(n)
        if id(n) in after:
            g.node.append(after[id(n)])
    if not any(o.domain == 'com.microsoft' for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid('com.microsoft', 1))
    return len(row_scales)


def embeddings_per_row(model: onnx.ModelProto) -> None:
    """The word-embedding Gather reads an int8 table with one scale per vocabulary row."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    gathers = [n for n in g.node if n.op_type == 'Gather' and n.input[0] in inits and 'word_embeddings' in n.name]
    if len(gathers) != 1:
        raise SystemExit(f'expected one word-embedding Gather, found {len(gathers)}')
    n = gathers[0]
    table = numpy_helper.to_array(inits[n.input[0]])
    scale = (np.maximum(np.abs(table).max(1), 1e-12) / 127).astype(np.float32)
    q = np.clip(np.round(table / scale[:, None]), -127, 127).astype(np.int8)
    g.initializer.remove(inits[n.input[0]])
    g.initializer.extend([numpy_helper.from_array(q, 'word_embeddings_int8'),
                          numpy_helper.from_array(scale[:, None], 'word_embeddings_row_scale')])
    out, ids = n.output[0], n.input[1]
    new = [helper.make_node('Gather', ['word_embeddings_int8', ids], [f'{out}_int8'], name=f'{n.name}_int8'),
           helper.make_node('Gather', ['word_embeddings_row_scale', ids], [f'{out}_scale'], name=f'{n.name}_scale'),
           helper.make_node('Cast', [f'{out}_int8'], [f'{out}_float'], name=f'{n.name}_cast', to=TensorProto.FLOAT),
           helper.make_node('Mul', [f'{out}_float', f'{out}_scale'], [out], name=f'{n.name}_dequantize')]
    nodes = list(g.node)
    at = nodes.index(n)
    nodes[at:at + 1] = new
    del g.node[:]
    g.node.extend(nodes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('src')
    ap.add_argument('dst')
    ap.add_argument('--calibration', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'quantize-calibration.json'))
    ap.add_argument('--alpha', type=float, default=0.7)
    args = ap.parse_args()
    with open(args.calibration, 'rb') as f:
        raw = f.read()
    ids = json.loads(raw)['input_ids']
    model = onnx.load(args.src)
    packed = pack_qkv(model)
    ranges = smooth(model, ids, args.alpha)
    tmp, tmp_q = args.dst + '.smoothed.onnx', args.dst + '.dynamic.onnx'
    onnx.save(model, tmp)
    try:
        quantize_dynamic(tmp, tmp_q, per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=['MatMul'])
        model = onnx.load(tmp_q)
    finally:
        for f in (tmp, tmp_q):
            if os.path.exists(f):
                os.remove(f)
    static = static_scales(model, ranges)
    count = per_row(model)
    embeddings_per_row(model)
    onnx.checker.check_model(model)
    note = (f'scripts/quantize-per-row.py: Q/K/V packed in {packed} layers; LayerNorm outputs smoothed (alpha {args.alpha}, '
            f'powers of two); {static} activations (smoothed LayerNorm outputs, attention context) with a static scale '
            f'and {count} (feed-forward output inputs) with one scale per token row; calibration '
            f'{os.path.basename(args.calibration)} sha256 {hashlib.sha256(raw).hexdigest()[:16]} ({len(ids)} texts); '
            f'onnxruntime {onnxruntime.__version__} quantize_dynamic(per_channel=True, weight_type=QInt8, MatMul only); '
            f'word embeddings int8 per row (onnx {onnx.__version__}, numpy {np.__version__})')
    model.metadata_props.append(onnx.StringStringEntryProto(key='quantization', value=note))
    onnx.save(model, args.dst)
    print(f'{args.dst}: {note}')


if __name__ == '__main__':
    main()
