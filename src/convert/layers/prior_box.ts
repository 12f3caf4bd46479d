import { Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

const f32 = Math.fround;

/**
 * PriorBox (SSD fork's PriorBoxLayer, `prior_box_param`): the default boxes of a feature map, a constant for the
 * declared input size, shape [1, 2, 4·H·W·priors] shared by the batch: channel 0 the boxes (xmin, ymin, xmax, ymax,
 * normalized by the image size), channel 1 their variances. Per cell, for each min_size: the min_size square,
 * then √(min·max) when max_size is given, then each aspect ratio ≠ 1 (each followed by its flip when flip is set);
 * sizes are truncated to integers as the fork does; step absent = image size / feature-map size as a float.
 */
export const priorBox: LayerHandler = {
  types: ['PriorBox'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(2, 1);
    const p = ctx.params('prior_box_param');
    const raw = (ctx.layer.msg.prior_box_param ?? {}) as Record<string, unknown>;
    const has = (k: string) => k in raw;
    const list = (k: string) => ((p[k] as number[] | undefined) ?? []).map(f32);
    const minSizes = list('min_size');
    const maxSizes = list('max_size');
    if (minSizes.length === 0) ctx.fail('prior_box_param.min_size is required');
    minSizes.forEach((s) => s > 0 || ctx.fail(`prior_box_param.min_size ${s} must be positive`));
    if (maxSizes.length > 0 && maxSizes.length !== minSizes.length)
      ctx.fail(`prior_box_param has ${minSizes.length} min_size but ${maxSizes.length} max_size values; give one max_size per min_size`);
    maxSizes.forEach((m, i) => m > minSizes[i] || ctx.fail(`prior_box_param.max_size ${m} must be greater than min_size ${minSizes[i]}`));
    const fractional = [...minSizes, ...maxSizes].filter((s) => !Number.isInteger(s));
    if (fractional.length) ctx.note(`prior sizes ${fractional.join(', ')} are truncated to integers, as the SSD fork of Caffe does`);
    const flip = p.flip as boolean;
    const ratios = [1];
    for (const ar of list('aspect_ratio')) {
      if (ratios.some((r) => Math.abs(ar - r) < 1e-6)) continue;
      ratios.push(ar);
      if (flip) ratios.push(f32(1 / ar));
    }
    const variance = list('variance');
    if (variance.length > 1 && variance.length !== 4) ctx.fail(`prior_box_param.variance has ${variance.length} values; give 1 or 4`);
    variance.forEach((v) => v > 0 || ctx.fail(`prior_box_param.variance ${v} must be positive`));
    const variances = variance.length === 4 ? variance : Array<number>(4).fill(variance.length === 1 ? variance[0] : f32(0.1));

    if (has('img_size') && (has('img_h') || has('img_w'))) ctx.fail('give either img_size or img_h/img_w, not both');
    if (has('step') && (has('step_h') || has('step_w'))) ctx.fail('give either step or step_h/step_w, not both');
    const [feat, image] = ctx.inputs;
    const layerH = ctx.staticDim(feat.shape, 2, 'PriorBox');
    const layerW = ctx.staticDim(feat.shape, 3, 'PriorBox');
    let imgH: number;
    let imgW: number;
    if (has('img_size')) imgH = imgW = p.img_size as number;
    else if (has('img_h') || has('img_w')) {
      imgH = p.img_h as number;
      imgW = p.img_w as number;
      if (!(imgH > 0 && imgW > 0)) ctx.fail('prior_box_param.img_h and img_w must both be positive');
    } else {
      imgH = ctx.staticDim(image.shape, 2, 'PriorBox (image size)');
      imgW = ctx.staticDim(image.shape, 3, 'PriorBox (image size)');
    }
    let stepH: number;
    let stepW: number;
    if (has('step')) stepH = stepW = f32(p.step as number);
    else if (has('step_h') || has('step_w')) {
      stepH = f32(p.step_h as number);
      stepW = f32(p.step_w as number);
      if (!(stepH > 0 && stepW > 0)) ctx.fail('prior_box_param.step_h and step_w must both be positive');
    } else {
      stepH = f32(imgH / layerH);
      stepW = f32(imgW / layerW);
    }
    const offset = f32(p.offset as number);

    // box sizes per cell, in the fork's order
    const sizes: [number, number][] = [];
    minSizes.forEach((minF, s) => {
      const min = Math.trunc(minF);
      sizes.push([min, min]);
      if (maxSizes.length) {
        const side = f32(Math.sqrt(min * Math.trunc(maxSizes[s])));
        sizes.push([side, side]);
      }
      for (const ar of ratios) {
        if (Math.abs(ar - 1) < 1e-6) continue;
        const r = f32(Math.sqrt(ar));
        sizes.push([f32(min * r), f32(min / r)]);
      }
    });
    const dim = layerH * layerW * sizes.length * 4;
    const data = new Float32Array(2 * dim);
    let k = 0;
    for (let h = 0; h < layerH; h++) {
      const cy = f32(f32(h + offset) * stepH);
      for (let w = 0; w < layerW; w++) {
        const cx = f32(f32(w + offset) * stepW);
        for (const [bw, bh] of sizes) {
          data[k++] = (cx - bw / 2) / imgW;
          data[k++] = (cy - bh / 2) / imgH;
          data[k++] = (cx + bw / 2) / imgW;
          data[k++] = (cy + bh / 2) / imgH;
        }
      }
    }
    if (p.clip) for (let i = 0; i < dim; i++) data[i] = Math.min(Math.max(data[i], 0), 1);
    for (let i = 0; i < dim; i++) data[dim + i] = variances[i % 4];
    // a constant: an initializer feeding an Identity keeps the top a node output (per-layer checks, chosen outputs)
    ctx.g.node('Identity', [ctx.g.floatInit(`${ctx.layer.name}/priors`, [1, 2, dim], data)], [ctx.out()], {}, ctx.layer.name);
    return [[1, 2, dim]];
  },
};
