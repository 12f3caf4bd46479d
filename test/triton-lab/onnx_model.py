"""The modelship lab's ONNX adapter: a Triton python-backend model that runs <version>/model.onnx with ONNX Runtime.

/opt/tritonserver/bin/tritonserver (the wrapper) copies this file to <model>/<version>/model.py of every model whose
config.pbtxt said `platform: "onnxruntime_onnx"`, the rest of the config untouched. Triton itself enforces that config
on every request (input names, data types, dims, max_batch_size; dynamic batching; instance groups). What Triton's
ONNX Runtime backend would add at load time, the check of the config against the ONNX model, is done here in
initialize(), with the ONNX Runtime backend's own wording: a config that does not fit the model fails the load.
"""
import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

SIDECAR = 'modelship-onnx-adapter.txt'

# config data type -> (ONNX Runtime type string, numpy type)
TYPES = {
    'TYPE_FP32': ('tensor(float)', np.float32), 'TYPE_FP64': ('tensor(double)', np.float64),
    'TYPE_FP16': ('tensor(float16)', np.float16), 'TYPE_BOOL': ('tensor(bool)', np.bool_),
    'TYPE_INT8': ('tensor(int8)', np.int8), 'TYPE_INT16': ('tensor(int16)', np.int16),
    'TYPE_INT32': ('tensor(int32)', np.int32), 'TYPE_INT64': ('tensor(int64)', np.int64),
    'TYPE_UINT8': ('tensor(uint8)', np.uint8), 'TYPE_UINT16': ('tensor(uint16)', np.uint16),
    'TYPE_UINT32': ('tensor(uint32)', np.uint32), 'TYPE_UINT64': ('tensor(uint64)', np.uint64),
    'TYPE_STRING': ('tensor(string)', np.object_),
}
ORT_TO_CONFIG = {v[0]: k for k, v in TYPES.items()}


def _dims(ds):
    return [int(d) for d in ds]


def _shape(ds):
    return '[' + ','.join(str(d) for d in ds) + ']'


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args['model_config'])
        self.model = args['model_name']
        mdir = args['model_repository']
        onnx_name = 'model.onnx'
        side = os.path.join(mdir, SIDECAR)
        if os.path.exists(side):
            with open(side, encoding='utf-8') as fh:
                onnx_name = fh.read().strip()
        path = os.path.join(mdir, args['model_version'], onnx_name)
        so = ort.SessionOptions()
        params = {k: v.get('string_value') for k, v in (cfg.get('parameters') or {}).items()}
        if params.get('intra_op_thread_count', '0').isdigit() and int(params.get('intra_op_thread_count', '0')) > 0:
            so.intra_op_num_threads = int(params['intra_op_thread_count'])
        self.session = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
        self.max_batch = int(cfg.get('max_batch_size', 0))
        self.inputs = self._check('input', cfg.get('input', []), self.session.get_inputs(), exact=True)
        self.outputs = self._check('output', cfg.get('output', []), self.session.get_outputs(), exact=False)
        pb_utils.Logger.log_info(
            'modelship onnx adapter: model \'%s\' version %s: ONNX Runtime %s (CPUExecutionProvider) runs %s; '
            'inputs %s, outputs %s, max_batch_size %d; the config was checked against the ONNX model'
            % (self.model, args['model_version'], ort.__version__, path,
               ', '.join('%s %s' % (n, _shape(s)) for n, _, s in self.inputs),
               ', '.join('%s %s' % (n, _shape(s)) for n, _, s in self.outputs), self.max_batch))

    def _check(self, kind, configured, provided, exact):
        """The ONNX Runtime backend's load-time checks of config inputs/outputs against the model."""
        by_name = {t.name: t for t in provided}
        if exact and len(configured) != len(provided):
            raise pb_utils.TritonModelException(
                'unable to load model \'%s\', configuration expects %d inputs, model provides %d'
                % (self.model, len(configured), len(provided)))
        result = []
        for c in configured:
            name = c['name']
            t = by_name.get(name)
            if t is None:
                raise pb_utils.TritonModelException(
                    'unexpected inference %s \'%s\', allowed %ss are: %s'
                    % (kind, name, kind, ', '.join(sorted(by_name))))
            dtype = c.get('data_type', 'TYPE_INVALID')
            if TYPES.get(dtype, (None,))[0] != t.type:
                raise pb_utils.TritonModelException(
                    'unexpected datatype %s for inference %s \'%s\', expecting %s'
                    % (dtype, kind, name, ORT_TO_CONFIG.get(t.type, t.type)))
            dims = _dims((c.get('reshape') or {}).get('shape', c.get('dims', [])))
            full = ([-1] if self.max_batch > 0 else []) + dims
            model = [d if isinstance(d, int) and d >= 0 else -1 for d in t.shape]
            if len(model) != len(full) or any(m != -1 and m != f for m, f in zip(model, full)) or (self.max_batch > 0 and model[0] != -1):
                raise pb_utils.TritonModelException(
                    'model \'%s\', tensor \'%s\': the model expects %d dimensions (shape %s) but the model configuration '
                    'specifies %d dimensions (%sshape %s)'
                    % (self.model, name, len(model), _shape(model), len(full),
                       'an initial batch dimension because max_batch_size > 0 followed by the explicit tensor shape, making complete '
                       if self.max_batch > 0 else '', _shape(full)))
            result.append((name, TYPES[dtype][1], dims))
        return result

    def _run(self, feeds):
        names = [n for n, _, _ in self.outputs]
        return dict(zip(names, self.session.run(names, feeds)))

    def execute(self, requests):
        try:
            arrays = [{n: pb_utils.get_input_tensor_by_name(r, n).as_numpy().astype(t, copy=False) for n, t, _ in self.inputs} for r in requests]
        except Exception as e:  # noqa: BLE001
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError('reading the inputs: %s' % e)) for _ in requests]
        # one ONNX Runtime run for what the dynamic batcher gathered, when the items can be stacked
        stackable = self.max_batch > 0 and len(requests) > 1 and all(
            a[n].shape[1:] == arrays[0][n].shape[1:] for a in arrays for n, _, _ in self.inputs)
        try:
            if stackable:
                sizes = [arrays[i][self.inputs[0][0]].shape[0] for i in range(len(requests))]
                out = self._run({n: np.concatenate([a[n] for a in arrays]) for n, _, _ in self.inputs})
                bounds = np.cumsum([0] + sizes)
                results = [{n: v[bounds[i]:bounds[i + 1]] for n, v in out.items()} for i in range(len(requests))]
            else:
                results = [self._run(a) for a in arrays]
        except Exception as e:  # noqa: BLE001
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError('ONNX Runtime: %s' % e)) for _ in requests]
        return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(n, np.ascontiguousarray(res[n].astype(t, copy=False))) for n, t, _ in self.outputs])
                for res in results]

    def finalize(self):
        self.session = None
