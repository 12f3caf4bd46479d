import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import { convertCaffe } from '../src/convert/converter';
import { startServer, DEFAULT_SERVE, RunningServer, ServeOptions } from '../src/serve/server';
import { serveOptions } from '../src/serve/main';
import { DynamicBatcher } from '../src/serve/batcher';
import { encodeInferRequest, decodeInferResponse, HEADER_LENGTH } from '../src/protocol/kserve';
import { imageToDetectionTensor, parsePreprocess, GOOGLENET_PREPROCESS } from '../src/protocol/pixels';
import { splitDetectionTable, imageDetections, matchDetections, parseExpectedDetections, iou, detectionOutputNames } from '../src/protocol/detections';
import { compareDetections, detectionRows } from '../src/protocol/detections';
import { goldenRequests, httpTransport } from '../src/shared/golden';
import { detectImage, detectServer, ModelMeta } from '../src/protocol/kserve-client';
import { runOnnx } from '../src/util/ort';
import { NpyArray, encodeNpy } from '../src/util/npy';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { tinySsd } from './helpers/ssd';
import { request } from './helpers/http';

/** A W x H PNG of smooth colour waves (`k` picks the pattern). */
function png(width: number, height: number, k: number): Buffer {
  const p = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      p.data[i] = 128 + 127 * Math.sin((x * (k + 1)) / 7);
      p.data[i + 1] = 128 + 127 * Math.cos((y * (k + 2)) / 5);
      p.data[i + 2] = 128 + 127 * Math.sin(((x + y) * (k + 3)) / 11);
      p.data[i + 3] = 255;
    }
  }
  return PNG.sync.write(p);
}

/** Item i of the test inputs: [1, 3, 32, 32] (item 0 is all zeros: the model finds nothing in it). */
function item(i: number): Float32Array {
  return new Float32Array(3 * 32 * 32).map((_, j) => Math.sin(j * (0.1 + i * 0.13)) * 60 * i);
}

function concat(...xs: Float32Array[]): Float32Array {
  const out = new Float32Array(xs.reduce((a, x) => a + x.length, 0));
  let o = 0;
  for (const x of xs) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

const table = (t: { data: Float32Array; shape: number[] }): NpyArray => ({ data: t.data, shape: t.shape });

describe('serving a detection model (SSD): /infer split by image_id, /detect in image pixels', () => {
  const dir = tmpDir('modelship-serve-det-');
  const net = tinySsd({ confidence: 0.6 });
  const conv = convertCaffe({
    prototxt: Buffer.from(net.prototxt),
    prototxtFile: 'deploy.prototxt',
    caffemodel: net.caffemodel,
    caffemodelFile: 'w.caffemodel',
  });
  const model = path.join(dir, 'ssd.onnx');
  fs.writeFileSync(model, conv.onnx);
  const labels = path.join(dir, 'labels.txt');
  fs.writeFileSync(labels, 'background\ncat\ndog\n');
  const lines: string[] = [];
  let srv: RunningServer;
  const options = (extra: Partial<ServeOptions> = {}): ServeOptions => ({
    ...DEFAULT_SERVE,
    host: '127.0.0.1',
    port: 0,
    modelPath: model,
    modelName: 'ssd',
    labels: ['background', 'cat', 'dog'],
    log: (l) => lines.push(l),
    ...extra,
  });
  /** the model run by ONNX Runtime alone (graph optimization all, as the server runs it) */
  const reference = async (x: Float32Array, n: number) =>
    (await runOnnx(conv.onnx, { data: { data: x, shape: [n, 3, 32, 32] } }, ['detection_out'], 'all')).outputs.detection_out;
  const infer = async (x: Float32Array, n: number, json = false) => {
    if (json) {
      const r = await request(`${srv.url}/v2/models/ssd/infer`, {
        body: JSON.stringify({ inputs: [{ name: 'data', shape: [n, 3, 32, 32], datatype: 'FP32', data: Array.from(x) }] }),
      });
      expect(r.status).toBe(200);
      const o = r.json().outputs[0];
      return { shape: o.shape as number[], data: Float32Array.from(o.data as number[]) };
    }
    const req = encodeInferRequest([{ name: 'data', shape: [n, 3, 32, 32], data: x }], { binaryOutputs: true });
    const r = await request(`${srv.url}/v2/models/ssd/infer`, { body: req.body, headers: { [HEADER_LENGTH]: req.headerLength } });
    expect(r.status).toBe(200);
    return decodeInferResponse(r.body, Number(r.headers[HEADER_LENGTH])).outputs[0];
  };

  beforeAll(async () => {
    // a long queue delay and no idle flush: concurrent requests are batched together
    srv = await startServer(options({ maxBatchSize: 8, maxQueueDelayMs: 150, idleFlush: false }));
  });
  afterAll(async () => srv.drain());

  test('the converted model is a detection model: metadata, log, server extensions', async () => {
    expect(detectionOutputNames({ 'modelship.detection_outputs': 'detection_out' }, ['detection_out', 'other'])).toEqual(['detection_out']);
    const meta = (await request(`${srv.url}/v2/models/ssd`)).json();
    expect(meta).toMatchObject({ inputs: [{ name: 'data', shape: [-1, 3, 32, 32] }], outputs: [{ name: 'detection_out', shape: [1, 1, -1, 7] }] });
    expect(meta.parameters.detection_outputs).toBe('detection_out');
    expect(JSON.parse(meta.parameters.preprocess)).toEqual(GOOGLENET_PREPROCESS);
    expect((await request(`${srv.url}/v2`)).json().extensions).toEqual(expect.arrayContaining(['classification', 'detection']));
    expect(lines.join('\n')).toMatch(/detection output detection_out: \[1, 1, D, 7\] tables, split per request by image_id/);
  });

  test("a request alone gets the model's table: batch 1 and 2, binary and JSON, an empty table as [1, 1, 0, 7]", async () => {
    const x12 = concat(item(1), item(2));
    for (const json of [false, true]) {
      const got = await infer(x12, 2, json);
      const ref = await reference(x12, 2);
      expect(got.shape).toEqual([1, 1, ref.shape[2], 7]);
      expect(new Set(detectionRows(table(got)).map((d) => d.image))).toEqual(new Set([0, 1]));
      expect(compareDetections('detection_out', 2, table(got), ref).pass).toBe(true);
    }
    const none = await infer(item(0), 1);
    expect(none.shape).toEqual([1, 1, 0, 7]);
    expect(none.data.length).toBe(0);
  });

  test('concurrent requests batched together each get their own detections, image_id re-based, as when sent alone', async () => {
    // alone (the server idle, each runs as its own batch after the queue delay)
    const a = concat(item(3));
    const b = concat(item(0), item(2));
    const c = concat(item(1), item(3), item(2));
    const alone = [await infer(a, 1), await infer(b, 2), await infer(c, 3)];
    const before = { ...srv.batcher.stats };
    const together = await Promise.all([infer(a, 1), infer(b, 2), infer(c, 3)]);
    // one batch of 6 items: the three requests ran together
    expect(srv.batcher.stats.batches - before.batches).toBe(1);
    expect(srv.batcher.stats.items - before.items).toBe(6);
    // and their tables, cut out of the batch's, are the ones each request gets alone
    const whole = await reference(concat(a, b, c), 6);
    const rowsOf = (first: number, n: number): NpyArray => {
      const d = splitDetectionTable(whole.data, first, n);
      return { data: d, shape: [1, 1, d.length / 7, 7] };
    };
    const parts = [rowsOf(0, 1), rowsOf(1, 2), rowsOf(3, 3)];
    together.forEach((t, i) => {
      expect(t.shape).toEqual([1, 1, t.data.length / 7, 7]);
      const ids = detectionRows(table(t)).map((d) => d.image);
      expect(Math.max(...ids)).toBeLessThan([1, 2, 3][i]);
      expect(compareDetections('detection_out', 1, table(t), table(alone[i])).pass).toBe(true);
      expect(compareDetections('detection_out', 1, table(t), parts[i]).pass).toBe(true);
    });
    // request b: its item 0 finds nothing, item 1 (the model's item 2) does
    expect(detectionRows(table(together[1])).every((d) => d.image === 1)).toBe(true);
    expect(together[1].shape[2]).toBeGreaterThan(0);
  });

  test('classification does not apply to a detection table: /classify and the classification parameter are 400', async () => {
    const r = await request(`${srv.url}/v2/models/ssd/classify`, { body: png(40, 30, 1) });
    expect(r.status).toBe(400);
    expect(r.json().error).toMatch(/detection model .*POST the image to \/v2\/models\/ssd\/detect/);
    const req = encodeInferRequest([{ name: 'data', shape: [1, 3, 32, 32], data: item(1) }], { outputs: [{ name: 'detection_out', classification: 2 }] });
    const c = await request(`${srv.url}/v2/models/ssd/infer`, { body: req.body, headers: { [HEADER_LENGTH]: req.headerLength } });
    expect(c.status).toBe(400);
    expect(c.json().error).toMatch(/output "detection_out" is a detection table .*"classification" does not apply/);
  });

  test('/detect: an image in, detections in its own pixels (x by its width, y by its height), labels named', async () => {
    const img = png(64, 40, 2);
    const r = await request(`${srv.url}/v2/models/ssd/detect`, { body: img, headers: { 'content-type': 'image/png' } });
    expect(r.status).toBe(200);
    const j = r.json();
    expect(j).toMatchObject({ model_name: 'ssd', model_version: '1', width: 64, height: 40, threshold: 0.5 });
    // what the server must have done: the whole image resized to 32x32, the model, rows of score ≥ 0.5 scaled
    const x = imageToDetectionTensor(img, 32, 32, GOOGLENET_PREPROCESS);
    expect([x.width, x.height]).toEqual([64, 40]);
    const ref = await reference(x.data, 1);
    const want = imageDetections(ref.data, { threshold: 0.5, width: 64, height: 40, labels: ['background', 'cat', 'dog'] });
    expect(want.length).toBeGreaterThan(0);
    expect(j.detections).toHaveLength(want.length);
    j.detections.forEach((d: any, i: number) => {
      expect(d.label).toBe(want[i].label);
      expect(d.label_name).toBe(['background', 'cat', 'dog'][d.label]);
      expect(d.score).toBeCloseTo(want[i].score, 4);
      d.box.forEach((v: number, k: number) => expect(v).toBeCloseTo(want[i].box[k], 2));
      if (i > 0) expect(d.score).toBeLessThanOrEqual(j.detections[i - 1].score);
    });
    // the same rows, normalized: x / 64, y / 40
    const rows = detectionRows(ref).sort((a, b) => b.score - a.score);
    expect(j.detections[0].box[0] / 64).toBeCloseTo(rows[0].box[0], 4);
    expect(j.detections[0].box[3] / 40).toBeCloseTo(rows[0].box[3], 4);

    // ?threshold= filters; a large image goes through a decode thread and answers the same
    const scores = want.map((d) => d.score).sort((a, b) => b - a);
    const cut = (scores[0] + scores[scores.length - 1]) / 2;
    const some = (await request(`${srv.url}/v2/models/ssd/detect?threshold=${cut}`, { body: img })).json();
    expect(some.detections.length).toBe(want.filter((d) => d.score >= cut).length);
    expect((await request(`${srv.url}/v2/models/ssd/detect?threshold=1`, { body: img })).json().detections).toEqual([]);
    const big = png(600, 400, 2);
    const bigR = await request(`${srv.url}/v2/models/ssd/versions/1/detect`, { body: big });
    expect(bigR.status).toBe(200);
    expect(bigR.json()).toMatchObject({ width: 600, height: 400 });
  });

  test('/detect refuses what it cannot take, by name', async () => {
    const cases: [string, Buffer | string, number, RegExp][] = [
      ['?threshold=1.5', png(40, 30, 1), 400, /threshold must be a number from 0 to 1 .*got "1.5"/],
      ['?threshold=', png(40, 30, 1), 400, /threshold must be a number from 0 to 1/],
      ['?threshold=high', png(40, 30, 1), 400, /threshold must be a number from 0 to 1 .*got "high"/],
      ['', 'not an image', 415, /not a JPEG or PNG/],
    ];
    for (const [q, body, status, msg] of cases) {
      const r = await request(`${srv.url}/v2/models/ssd/detect${q}`, { body });
      expect([q, r.status]).toEqual([q, status]);
      expect(r.json().error).toMatch(msg);
    }
    expect((await request(`${srv.url}/v2/models/ssd/detect`)).status).toBe(405);
    const m = (await request(`${srv.url}/metrics`)).body.toString();
    expect(m).toMatch(/modelship_requests_total\{route="detect",code="200"\} \d+/);
    expect(m).toMatch(/modelship_request_errors_total\{route="detect",code="400"\} \d+/);
  });

  test('the client side (smoke, rollout): detectImage through /detect and through /infer agree', async () => {
    const t = httpTransport(srv.url);
    const server = await detectServer(t);
    const meta = (await request(`${srv.url}/v2/models/ssd`)).json() as ModelMeta;
    const img = png(64, 40, 2);
    const viaDetect = await detectImage(t, { runtime: server.runtime, modelName: 'ssd', meta, image: img, threshold: 0.5 });
    // Triton's way: preprocessed here, a tensor to /infer, the table read and scaled here
    const viaInfer = await detectImage(t, { runtime: 'triton', modelName: 'ssd', meta, image: img, threshold: 0.5 });
    expect(viaDetect.error).toBeUndefined();
    expect(viaInfer.error).toBeUndefined();
    expect(viaDetect.route).toBe('/detect');
    expect(viaInfer.route).toBe('/infer');
    expect(viaDetect.detections.length).toBeGreaterThan(0);
    expect(matchDetections(viaDetect.detections, viaInfer.detections, 0.99).pass).toBe(true);
  });

  test('golden requests compare a detection table as detections: same ones pass, a moved box or a missing one fails', async () => {
    const ref = tmpDir('modelship-golden-det-');
    const x1 = item(2);
    const x2 = concat(item(0), item(3));
    const o1 = await reference(x1, 1);
    const o2 = await reference(x2, 2);
    fs.writeFileSync(path.join(ref, 'input_b1.npy'), encodeNpy([1, 3, 32, 32], x1));
    fs.writeFileSync(path.join(ref, 'input_b2.npy'), encodeNpy([2, 3, 32, 32], x2));
    // the reference's rows in another order (Caffe writes them by class): compared as sets
    const reversed = (t: NpyArray) => {
      const rows = Array.from({ length: t.data.length / 7 }, (_, i) => t.data.subarray(i * 7, i * 7 + 7)).reverse();
      return concat(...rows);
    };
    fs.writeFileSync(path.join(ref, 'output_b1__detection_out.npy'), encodeNpy(o1.shape, reversed(o1)));
    fs.writeFileSync(path.join(ref, 'output_b2__detection_out.npy'), encodeNpy(o2.shape, o2.data));
    const t = httpTransport(srv.url);
    const ok = await goldenRequests(t, { reference: ref, modelName: 'ssd', inputName: 'data', singleInput: true, tolerance: 1e-5 });
    expect(ok.failures).toEqual([]);
    expect(ok.compared).toBe(2);
    expect(ok.rows[0]).toMatch(new RegExp(`^\\| 1 \\| detection_out \\| .* \\| ${o1.shape[2]} detections \\| pass \\|$`));
    // a box moved by 0.01 (3 px at 300 px) and a detection dropped: both named
    const moved = new Float32Array(o1.data);
    moved[3] += 0.01;
    fs.writeFileSync(path.join(ref, 'output_b1__detection_out.npy'), encodeNpy(o1.shape, moved));
    fs.writeFileSync(path.join(ref, 'output_b2__detection_out.npy'), encodeNpy([1, 1, o2.shape[2] - 1, 7], o2.data.slice(7)));
    const bad = await goldenRequests(t, { reference: ref, modelName: 'ssd', inputName: 'data', singleInput: true, tolerance: 1e-5 });
    expect(bad.failures).toHaveLength(2);
    expect(bad.failures[0]).toMatch(
      /output "detection_out" at batch 1 differs from the reference: detections image 0: \d+; .*max box \|Δ\| 1\.00e-2 \(≤ 0\.0001\)/,
    );
    expect(bad.failures[1]).toMatch(/output "detection_out" at batch 2 differs from the reference: detections image 1: (\d+), expected (\d+)/);
    expect(bad.rows[1]).toMatch(/detections, expected \d+ \| \*\*fail\*\* \|$/);
  });

  test('a classifier has no /detect', async () => {
    const d = path.join(FIXTURES, 'lenet');
    const lenet = convertCaffe({
      prototxt: fs.readFileSync(path.join(d, 'deploy.prototxt')),
      prototxtFile: 'p',
      caffemodel: fs.readFileSync(path.join(d, 'weights.caffemodel')),
      caffemodelFile: 'w',
    });
    const f = path.join(dir, 'lenet.onnx');
    fs.writeFileSync(f, lenet.onnx);
    const s = await startServer(options({ modelPath: f, modelName: 'lenet' }));
    try {
      const r = await request(`${s.url}/v2/models/lenet/detect`, { body: png(28, 28, 1) });
      expect(r.status).toBe(400);
      expect(r.json().error).toMatch(/model "lenet" is not a detection model .*\/v2\/models\/lenet\/classify/);
      expect((await request(`${s.url}/v2/models/lenet`)).json().parameters.detection_outputs).toBeUndefined();
    } finally {
      await s.drain();
    }
  });
});

describe('detections, the pure part', () => {
  test('a batch table split by image_id: each part re-based, rows of no item (image_id -1) dropped, order kept', () => {
    const t = Float32Array.from([
      0, 1, 0.9, 0, 0, 1, 1, 2, 2, 0.8, 0.1, 0.1, 0.2, 0.2, 2, 1, 0.7, 0, 0, 0.5, 0.5, -1, 0, 0, 0, 0, 0, 0, 3, 1, 0.95, 0.3, 0.3, 0.4, 0.4,
    ]);
    expect(Array.from(splitDetectionTable(t, 0, 1))).toEqual(Array.from(t.subarray(0, 7)));
    expect(splitDetectionTable(t, 1, 1).length).toBe(0);
    const two = splitDetectionTable(t, 2, 2);
    expect(Array.from(two.filter((_, i) => i % 7 === 0))).toEqual([0, 0, 1]);
    expect([two[2], two[9], two[16]].map((v) => Math.round(v * 100) / 100)).toEqual([0.8, 0.7, 0.95]);
  });

  test('the batcher hands each request its own rows of a detection table', async () => {
    // a "model" that finds one detection per item whose input value is positive, labelled by the value
    const runner = async (input: Float32Array, items: number) => {
      const rows: number[] = [];
      for (let i = 0; i < items; i++) if (input[i] > 0) rows.push(i, input[i], 0.9, 0.1, 0.1, 0.2, 0.2);
      await new Promise((r) => setTimeout(r, 20));
      return {
        det: { data: Float32Array.from(rows), itemShape: [1, rows.length / 7, 7], detections: true },
        y: { data: input.map((v) => v * 2), itemShape: [1] },
      };
    };
    const b = new DynamicBatcher(runner, 8, 50, undefined, false);
    const outs = await Promise.all([b.submit(Float32Array.from([5]), 1), b.submit(Float32Array.from([0, 7]), 2), b.submit(Float32Array.from([3, 0, 4]), 3)]);
    expect(b.stats.batches).toBe(1);
    expect(outs.map((o) => o.det.shape)).toEqual([
      [1, 1, 1, 7],
      [1, 1, 1, 7],
      [1, 1, 2, 7],
    ]);
    expect(outs.map((o) => Array.from(o.det.data.filter((_, i) => i % 7 < 2)))).toEqual([
      [0, 5],
      [1, 7],
      [0, 3, 2, 4],
    ]);
    expect(outs.map((o) => Array.from(o.y.data))).toEqual([[10], [0, 14], [6, 0, 8]]);
  });

  test('imageDetections: threshold, pixels, label names, highest score first', () => {
    const t = Float32Array.from([0, 1, 0.6, 0.1, 0.2, 0.5, 0.6, 0, 2, 0.9, 0, 0, 1, 1, 1, 1, 0.99, 0, 0, 1, 1, 0, 1, 0.3, 0, 0, 1, 1]);
    const d = imageDetections(t, { threshold: 0.5, width: 200, height: 100, labels: ['bg', 'face'] });
    expect(d).toEqual([
      { label: 2, score: expect.closeTo(0.9), box: [0, 0, 200, 100] },
      { label: 1, label_name: 'face', score: expect.closeTo(0.6), box: [expect.closeTo(20), expect.closeTo(20), expect.closeTo(100), expect.closeTo(60)] },
    ]);
  });

  test('matching expected detections: same label, IoU ≥ 0.5, one to one, maximum, same count', () => {
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3);
    expect(iou([0, 0, 10, 10], [20, 20, 30, 30])).toBe(0);
    const e = [
      { label: 1, box: [0, 0, 10, 10] as [number, number, number, number] },
      { label: 1, box: [2, 0, 12, 10] as [number, number, number, number] },
    ];
    // the first got box fits both expected ones best; greedy would give it to the first and strand the second
    const got = [
      { label: 1, box: [1, 0, 11, 10] },
      { label: 1, box: [-3, 0, 7, 10] },
    ];
    const m = matchDetections(e, got);
    expect(m.pass).toBe(true);
    expect(m.matches.map((x) => x.got).sort()).toEqual([0, 1]);
    expect(matchDetections(e, [got[0]]).pass).toBe(false); // one short
    expect(matchDetections(e, [...got, { label: 1, box: [50, 50, 60, 60] }]).extra).toEqual([2]);
    expect(matchDetections(e, [...got, { label: 1, box: [50, 50, 60, 60] }]).pass).toBe(false); // one too many
    expect(
      matchDetections(
        e,
        got.map((g) => ({ ...g, label: 2 })),
      ).pass,
    ).toBe(false); // wrong label
    expect(matchDetections([], []).pass).toBe(true);
  });

  test('expected detections and preprocessing as JSON: errors name what is wrong', () => {
    expect(parseExpectedDetections('[{"label": 1, "box": [1, 2, 30, 40]}]')).toEqual([{ label: 1, box: [1, 2, 30, 40] }]);
    expect(parseExpectedDetections('[]')).toEqual([]);
    expect(() => parseExpectedDetections('[{"label": 1')).toThrow(/not JSON/);
    expect(() => parseExpectedDetections('{"label": 1}')).toThrow(/a JSON list of/);
    expect(() => parseExpectedDetections('[{"label": 1.5, "box": [1, 2, 3, 4]}]')).toThrow(/entry 0: "label" must be a class index/);
    expect(() => parseExpectedDetections('[{"label": 1, "box": [1, 2, 3]}]')).toThrow(/entry 0: "box" must be four numbers/);
    expect(() => parseExpectedDetections('[{"label": 1, "box": [1, 2, 3, 4]}, {"label": 1, "box": [5, 5, 1, 9]}]')).toThrow(
      /entry 1: "box" \[5,5,1,9\] is empty/,
    );
    expect(() => parseExpectedDetections('[{"label": 1, "bbox": [1, 2, 3, 4]}]')).toThrow(/entry 0 has unknown field "bbox"/);
    expect(parsePreprocess('{"mean": [104, 177, 123], "resize": 0}')).toEqual({ ...GOOGLENET_PREPROCESS, mean: [104, 177, 123], resize: 0 });
    expect(() => parsePreprocess('{"mean": [104, 177]}')).toThrow(/"mean" must be three numbers/);
    expect(() => parsePreprocess('{"channelOrder": "bgr"}')).toThrow(/"channelOrder" must be "BGR" or "RGB"/);
    expect(() => parsePreprocess('{"means": [1, 2, 3]}')).toThrow(/unknown field "means"/);
  });

  test('serve flags: --detection-threshold and MODELSHIP_PREPROCESS checked', () => {
    expect(serveOptions(['--model', 'm.onnx'], {}, () => undefined).detectionThreshold).toBe(0.5);
    expect(serveOptions(['--model', 'm.onnx', '--detection-threshold', '0.8'], {}, () => undefined).detectionThreshold).toBe(0.8);
    expect(serveOptions(['--model', 'm.onnx'], { MODELSHIP_DETECTION_THRESHOLD: '0.25' }, () => undefined).detectionThreshold).toBe(0.25);
    expect(() => serveOptions(['--model', 'm.onnx', '--detection-threshold', '2'], {}, () => undefined)).toThrow(
      /--detection-threshold \/ MODELSHIP_DETECTION_THRESHOLD must be a number from 0 to 1, got "2"/,
    );
    expect(serveOptions(['--model', 'm.onnx'], { MODELSHIP_PREPROCESS: '{"mean":[104,177,123]}' }, () => undefined).preprocess.mean).toEqual([104, 177, 123]);
    expect(() => serveOptions(['--model', 'm.onnx'], { MODELSHIP_PREPROCESS: '{"mean":"104"}' }, () => undefined)).toThrow(
      /MODELSHIP_PREPROCESS: "mean" must be three numbers/,
    );
  });
});
