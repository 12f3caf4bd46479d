import * as path from 'path';
import { ConvertConfig } from './inputs';
import { Logger, StageResult } from '../stage';
import { convertCaffe } from './converter';
import { loadLayerPlugin } from './plugins';
import { parityFailure, parityMarkdown, DEFAULT_TOLERANCE, ParityReport } from '../shared/parity';
import { checkParity } from './parity';
import { readFileChecked, writeFileAtomic } from '../util/fsx';

/**
 * The convert stage: Caffe deploy.prototxt + caffemodel → ONNX (opset 13, dynamic batch), with a numeric
 * parity report against real Caffe outputs when a reference directory is given.
 * Everything is computed in memory first; files are written atomically only once conversion succeeded.
 */
export async function runConvert(cfg: ConvertConfig, log: Logger): Promise<StageResult> {
  const prototxt = readFileChecked(cfg.prototxt, 'prototxt');
  const caffemodel = readFileChecked(cfg.caffemodel, 'caffemodel');
  const plugin = cfg.layers ? loadLayerPlugin(cfg.layers) : undefined;
  if (plugin) log.info(`your own layers from ${cfg.layers}: ${[...plugin.handlers.keys()].join(', ')}`);
  const conv = await log.group('Convert Caffe → ONNX', () => {
    const t0 = Date.now();
    const c = convertCaffe({ prototxt, prototxtFile: cfg.prototxt, caffemodel, caffemodelFile: cfg.caffemodel, outputs: cfg.outputs, plugin });
    log.info(
      `${c.net.name}: ${c.net.layers.length} layers (${c.net.format} prototxt, ${c.weightsFormat} caffemodel) → ${c.nodeCount} ONNX nodes, opset 13, ` +
        `inputs ${c.inputs.map((i) => `${i.name}[${i.shape.join(',')}]`).join(' ')}, outputs ${c.outputs.map((o) => `${o.name}[${o.shape.join(',')}]`).join(' ')} in ${Date.now() - t0} ms`,
    );
    for (const w of c.warnings) log.warning(w);
    return Promise.resolve(c);
  });

  let report: ParityReport | undefined;
  if (cfg.reference) {
    report = await log.group('Parity against the Caffe reference', async () => {
      const r = await checkParity(conv, cfg.reference!, { perLayer: cfg.perLayer, tolerance: { ...DEFAULT_TOLERANCE, maxAbsDiff: cfg.tolerance } });
      log.info(`parity ${r.status}: max |Δ| ${r.maxAbsDiff.toExponential(3)} over batches ${r.batches.join(', ')}`);
      if (r.perLayer?.firstDivergence) {
        const f = r.perLayer.firstDivergence;
        log.info(`first diverging layer: ${f.layer} (${f.type}), blob ${f.blob}, max |Δ| ${f.maxAbsDiff.toExponential(3)}`);
      }
      return r;
    });
  }

  const out = cfg.out;
  // streamed from the caffemodel buffer: a large model is not held twice
  const written = await conv.writeOnnx(out);
  const digest = written.sha256;
  const outputs: Record<string, string> = {
    'onnx-path': out,
    sha256: digest,
    parity: report ? report.status : 'skipped',
    'max-abs-diff': report ? String(report.maxAbsDiff) : '',
    'parity-report': '',
  };
  let summary = `## modelship convert\n\n\`${cfg.prototxt}\` + \`${cfg.caffemodel}\` → \`${out}\` (sha256 \`${digest.slice(0, 16)}…\`, ${written.size} bytes, ${conv.nodeCount} nodes)\n\n`;
  if (report) {
    const dir = path.dirname(out);
    const jsonPath = path.join(dir, 'parity.json');
    writeFileAtomic(jsonPath, JSON.stringify({ model: out, sha256: digest, ...report }, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v), 2) + '\n');
    const md = parityMarkdown(report);
    writeFileAtomic(path.join(dir, 'parity.md'), md);
    outputs['parity-report'] = jsonPath;
    summary += md;
  } else {
    summary += 'Parity: skipped (no reference given).\n';
  }
  const ok = !report || report.status === 'pass';
  return {
    outputs,
    summary,
    ok,
    failure: ok ? undefined : `${parityFailure(report!)}; see ${outputs['parity-report']}`,
  };
}
