import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

const FLT_MAX = 3.4028234663852886e38;

/**
 * DetectionOutput (SSD fork's DetectionOutputLayer, `detection_output_param`) in standard ONNX ops, dynamic batch
 * kept. Bottoms: loc [N, P·Cl·4], conf [N, P·C] (any shapes with those per-item counts), priors [1, 2, P·4]
 * ([1, 1, P·4] with variance_encoded_in_target). Top: [1, 1, D, 7] rows (image_id, label, score, xmin, ymin,
 * xmax, ymax), normalized coordinates, per image by descending score; D is 0 when nothing is detected.
 *
 * Caffe's order of decisions, per image and foreground class: scores strictly above confidence_threshold, the
 * top_k best (stable) kept before NMS — TopK, not NonMaxSuppression's output limit, which caps what NMS keeps —,
 * greedy NMS keeping a box when IoU ≤ nms_threshold with every kept box (NonMaxSuppression, IoU without +1), then
 * keep_top_k per image across classes by score (a mask scattered from NMS's selection, then TopK per image).
 */
export const detectionOutput: LayerHandler = {
  types: ['DetectionOutput'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity([3, 4], 1);
    const p = ctx.params('detection_output_param');
    const raw = (ctx.layer.msg.detection_output_param ?? {}) as Record<string, unknown>;
    const nmsRaw = (raw.nms_param ?? {}) as Record<string, unknown>;
    const nmsP = (p.nms_param ?? {}) as Record<string, unknown>;
    if (ctx.inputs.length === 4) ctx.unsupported('a fourth bottom (image sizes for unnormalized boxes) is not supported');
    if (!('num_classes' in raw)) ctx.fail('detection_output_param.num_classes is required');
    const C = p.num_classes as number;
    if (C < 1) ctx.fail(`detection_output_param.num_classes ${C} must be positive`);
    const code = (p.code_type as string) ?? 'CORNER';
    if (code !== 'CENTER_SIZE' && code !== 'CORNER') ctx.unsupported(`code_type ${code} is not supported (CENTER_SIZE and CORNER are)`);
    if (raw.normalized_bbox === false) ctx.unsupported('normalized_bbox: false is not supported (boxes normalized to [0, 1] are)');
    const eta = 'eta' in nmsRaw ? (nmsRaw.eta as number) : 1;
    if (eta !== 1) ctx.unsupported(`nms_param.eta ${eta} (adaptive NMS) is not supported`);
    if (raw.visualize === true) ctx.unsupported('visualize: true is not supported (it draws with OpenCV during inference)');
    if ('save_output_param' in raw) ctx.note('save_output_param is ignored: it writes result files during Caffe testing, not at inference');
    const share = p.share_location as boolean;
    const bg = p.background_label_id as number;
    const varianceInTarget = p.variance_encoded_in_target as boolean;
    const nmsThreshold = 'nms_threshold' in nmsRaw ? (nmsP.nms_threshold as number) : 0.3;
    if (!(nmsThreshold > 0)) ctx.fail(`nms_param.nms_threshold ${nmsThreshold} must be positive`);
    const topK = 'top_k' in nmsRaw ? (nmsP.top_k as number) : -1;
    const keepTopK = p.keep_top_k as number;
    const threshold = 'confidence_threshold' in raw ? (p.confidence_threshold as number) : undefined;
    const clip = raw.clip === true;

    const [loc, conf, prior] = ctx.inputs;
    const perItem = (s: Shape, what: string) => s.slice(1).reduce<number>((a, _, i) => a * ctx.staticDim(s, i + 1, `DetectionOutput (${what})`), 1);
    const priorLen = perItem(prior.shape, 'priors');
    const priorRows = varianceInTarget ? 1 : 2;
    if (prior.shape[0] !== 1 || priorLen % (4 * priorRows) !== 0) ctx.fail(`bottom[2] (priors) [${prior.shape.join(', ')}] is not [1, ${priorRows}, 4·priors]`);
    const P = priorLen / (4 * priorRows);
    const Cl = share ? 1 : C;
    if (perItem(loc.shape, 'loc') !== P * Cl * 4)
      ctx.fail(`bottom[0] (loc) has ${perItem(loc.shape, 'loc')} values per image; ${P} priors × ${Cl} location class(es) × 4 = ${P * Cl * 4} expected`);
    if (perItem(conf.shape, 'conf') !== P * C)
      ctx.fail(`bottom[1] (conf) has ${perItem(conf.shape, 'conf')} values per image; ${P} priors × ${C} classes = ${P * C} expected`);
    const fg = Array.from({ length: C }, (_, c) => c).filter((c) => c !== bg);
    if (fg.length === 0) ctx.fail('no foreground class: num_classes is 1 and it is the background');
    const Cf = fg.length;
    const K = topK >= 0 ? Math.min(topK, P) : P;
    if (K === 0) ctx.fail('nms_param.top_k 0 keeps nothing');

    const g = ctx.g;
    const n = ctx.layer.name;
    let t = 0;
    const v = (s: string) => ctx.tmp(`${s}_${t++}`);
    const op = (o: string, inputs: string[], attrs: Record<string, ReturnType<typeof attr.i>> = {}, outs = 1): string[] => {
      const names = Array.from({ length: outs }, () => v(o.toLowerCase()));
      g.node(o, inputs, names, attrs);
      return names;
    };
    const one = (o: string, inputs: string[], attrs: Record<string, ReturnType<typeof attr.i>> = {}) => op(o, inputs, attrs)[0];
    const i64 = (name: string, vals: number[]) => g.int64Init(`${n}/${name}`, vals);
    const f = (name: string, val: number) => g.floatInit(`${n}/${name}`, [], [val]);
    const reshape = (x: string, dims: number[]) => one('Reshape', [x, i64('shape', dims)]);

    // priors and variances, [P, 1, 1] columns (broadcast against [N, P, Cl, 1])
    const priors3 = reshape(prior.name, [priorRows, P, 1, 4]);
    const column = (x: string, i: number) => one('Gather', [x, i64(`col${i}`, [i])], { axis: attr.i(3) });
    const boxRows = one('Gather', [priors3, i64('row0', [0])], { axis: attr.i(0) }); // [1, P, 1, 4]
    const pb = [0, 1, 2, 3].map((i) => reshape(column(boxRows, i), [P, 1, 1]));
    const pv = varianceInTarget
      ? []
      : (() => {
          const varRows = one('Gather', [priors3, i64('row1', [1])], { axis: attr.i(0) });
          return [0, 1, 2, 3].map((i) => reshape(column(varRows, i), [P, 1, 1]));
        })();
    // predictions [N, P, Cl, 1] per coordinate, scaled by the variances
    const loc4 = reshape(loc.name, [0, P, Cl, 4]);
    const l = [0, 1, 2, 3].map((i) => {
      const c = one('Gather', [loc4, i64(`loc_col${i}`, [i])], { axis: attr.i(3) });
      return varianceInTarget ? c : one('Mul', [pv[i], c]);
    });
    let corners: string[];
    if (code === 'CENTER_SIZE') {
      const half = f('half', 0.5);
      const pw = one('Sub', [pb[2], pb[0]]);
      const ph = one('Sub', [pb[3], pb[1]]);
      const pcx = one('Mul', [one('Add', [pb[0], pb[2]]), half]);
      const pcy = one('Mul', [one('Add', [pb[1], pb[3]]), half]);
      const cx = one('Add', [one('Mul', [l[0], pw]), pcx]);
      const cy = one('Add', [one('Mul', [l[1], ph]), pcy]);
      const hw = one('Mul', [one('Mul', [one('Exp', [l[2]]), pw]), half]);
      const hh = one('Mul', [one('Mul', [one('Exp', [l[3]]), ph]), half]);
      corners = [one('Sub', [cx, hw]), one('Sub', [cy, hh]), one('Add', [cx, hw]), one('Add', [cy, hh])];
    } else {
      corners = [0, 1, 2, 3].map((i) => one('Add', [pb[i], l[i]]));
    }
    if (clip) corners = corners.map((c) => one('Clip', [c, f('zero', 0), f('one', 1)]));
    const decoded = one('Concat', corners, { axis: attr.i(3) }); // [N, P, Cl, 4]

    // scores per foreground class [N, Cf, P], those not above the threshold at -inf
    const confNPC = reshape(conf.name, [0, P, C]);
    const confNCP = one('Transpose', [confNPC], { perm: attr.ints([0, 2, 1]) });
    let scores = one('Gather', [confNCP, i64('classes', fg)], { axis: attr.i(1) });
    if (threshold !== undefined) scores = one('Where', [one('Greater', [scores, f('threshold', threshold)]), scores, f('neg_inf', -Infinity)]);
    // top_k candidates per image and class, before NMS
    const [candScores, candIdx] = op('TopK', [scores, i64('top_k', [K])], { axis: attr.i(2), largest: attr.i(1), sorted: attr.i(1) }, 2); // [N, Cf, K]
    let candBoxes: string; // [N, Cf, K, 4]
    if (share) {
      const boxesNP4 = reshape(decoded, [0, P, 4]);
      const idx = reshape(candIdx, [0, Cf * K, 1]);
      candBoxes = reshape(one('GatherND', [boxesNP4, idx], { batch_dims: attr.i(1) }), [0, Cf, K, 4]);
    } else {
      const perClass = one('Transpose', [decoded], { perm: attr.ints([0, 2, 1, 3]) }); // [N, C, P, 4]
      const fgBoxes = one('Gather', [perClass, i64('loc_classes', fg)], { axis: attr.i(1) });
      candBoxes = one('GatherND', [fgBoxes, one('Unsqueeze', [candIdx, i64('last_axis', [3])])], { batch_dims: attr.i(2) });
    }
    // greedy NMS per (image, class): each pair is its own NMS batch
    const nmsBoxes = reshape(candBoxes, [-1, K, 4]);
    const flatScores = reshape(candScores, [-1, K]);
    const nmsScores = reshape(candScores, [-1, 1, K]);
    const selected = one('NonMaxSuppression', [
      nmsBoxes,
      nmsScores,
      i64('max_out', [K]),
      g.floatInit(`${n}/iou`, [1], [nmsThreshold]),
      g.floatInit(`${n}/score_floor`, [1], [-FLT_MAX]),
    ]);
    const where = one('Gather', [selected, i64('sel_cols', [0, 2])], { axis: attr.i(1) }); // [M, 2]: (image·Cf + class, candidate)
    const zeros = one('ConstantOfShape', [one('Shape', [flatScores])]);
    const ones = one('Add', [one('ConstantOfShape', [one('Slice', [one('Shape', [where]), i64('s0', [0]), i64('s1', [1])])]), f('one_v', 1)]);
    const keptMask = one('ScatterND', [zeros, where, ones]);
    const kept = one('Where', [one('Greater', [keptMask, f('half_mask', 0.5)]), flatScores, f('neg_inf_k', -Infinity)]);
    // keep_top_k per image across classes
    const perImage = reshape(kept, [-1, Cf * K]);
    const K2 = keepTopK >= 0 ? Math.min(keepTopK, Cf * K) : Cf * K;
    const [topScores, topIdx] = op('TopK', [perImage, i64('keep_top_k', [K2])], { axis: attr.i(1), largest: attr.i(1), sorted: attr.i(1) }, 2); // [N, K2]
    const boxesFlat = reshape(candBoxes, [0, Cf * K, 4]);
    const topBoxes = one('GatherND', [boxesFlat, one('Unsqueeze', [topIdx, i64('axis2', [2])])], { batch_dims: attr.i(1) }); // [N, K2, 4]
    const labelOf = new Float32Array(Cf * K);
    for (let j = 0; j < Cf * K; j++) labelOf[j] = fg[Math.floor(j / K)];
    const labels = one('Unsqueeze', [one('Gather', [g.floatInit(`${n}/labels`, [Cf * K], labelOf), topIdx]), i64('axis2b', [2])]);
    const score3 = one('Unsqueeze', [topScores, i64('axis2c', [2])]);
    const rows6 = one('Concat', [labels, score3, topBoxes], { axis: attr.i(2) }); // [N, K2, 6]
    // the kept rows: NonZero's first row is the image index
    const nz = one('NonZero', [one('Greater', [topScores, f('floor', -FLT_MAX)])]); // [2, D]
    const nzT = one('Transpose', [nz], { perm: attr.ints([1, 0]) }); // [D, 2]
    const rows = one('GatherND', [rows6, nzT]); // [D, 6]
    const imageIds = one('Cast', [one('Transpose', [one('Gather', [nz, i64('img_row', [0])], { axis: attr.i(0) })], { perm: attr.ints([1, 0]) })], {
      to: attr.i(1),
    }); // [D, 1]
    const table = one('Concat', [imageIds, rows], { axis: attr.i(1) });
    g.node('Reshape', [table, i64('out_shape', [1, 1, -1, 7])], [ctx.out()], {}, n);
    return [[1, 1, 'detections', 7]];
  },
};
