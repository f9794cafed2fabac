"""int8 graph of a float ONNX encoder whose activations are quantised per token row.

onnxruntime.quantization.quantize_dynamic writes DynamicQuantizeLinear, which takes ONE scale over the
whole activation tensor: in a padded batch a text's vector then depends on the other texts (and on the
padding). This script quantises the weights the same way (int8, one scale per output column), then
rewrites every DynamicQuantizeLinear so that each row (token) gets its own scale: a text gives the same
numbers whatever it is batched with, and the graph still runs batches.

For an activation x of shape [..., K] read by MatMulInteger nodes with weights W_q (scale W_scale):

    s   = max(max(x), -min(x), 1e-12) / 127            over the last axis, shape [..., 1]
    x_q = QuantizeLinear(x viewed as [rows, K], s, 128, axis=0)   (com.microsoft: per-axis at any opset)
    y   = MatMulIntegerToFloat(x_q, W_q, one, W_scale, 128, W_zp) * s  (+ bias, as before)

ONNX Runtime fuses MatMulInteger -> Cast -> Mul(Mul(a, b)) into MatMulIntegerToFloat, which takes a
scalar activation scale: so the row scale stays out of that product (a dynamic scalar 1.0 stands in for
it, computed from the input so that constant folding keeps the product a Mul and the fusion fires), and
each output row is multiplied by its scale after it. With the row scale inside the product the fused
graph gives wrong numbers.

Usage (Python with onnx and onnxruntime; the versions used are written into the model's metadata):
    python scripts/quantize-per-row.py models/all-MiniLM-L6-v2/onnx/model.onnx out.onnx
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic


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


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    tmp = dst + '.dynamic.onnx'
    quantize_dynamic(src, tmp, per_channel=True, weight_type=QuantType.QInt8)
    model = onnx.load(tmp)
    os.remove(tmp)
    count = per_row(model)
    onnx.checker.check_model(model)
    note = (f'onnxruntime {onnxruntime.__version__} quantize_dynamic(per_channel=True, weight_type=QInt8); '
            f'{count} DynamicQuantizeLinear made per row by scripts/quantize-per-row.py (onnx {onnx.__version__})')
    model.metadata_props.append(onnx.StringStringEntryProto(key='quantization', value=note))
    onnx.save(model, dst)
    print(f'{dst}: {note}')


if __name__ == '__main__':
    main()
